"""The single-use nonce ledger of signed requests and the Rampartd-HMAC header's form."""

from __future__ import annotations

import hashlib
import hmac

from rampartd import proof
from rampartd.nonces import NonceLedger

ID = "a" * 64


def test_a_nonce_is_used_once_per_key() -> None:
    ledger = NonceLedger(60, started=0)
    assert ledger.use(ID, "n1" * 8, 1000, 1000.0)
    assert not ledger.use(ID, "n1" * 8, 1000, 1001.0)
    assert ledger.use("b" * 64, "n1" * 8, 1000, 1001.0)  # another key's nonce space
    assert ledger.use(ID, "n2" * 8, 1000, 1001.0)


def test_only_timestamps_within_the_window_pass() -> None:
    ledger = NonceLedger(60, started=0)
    assert not ledger.use(ID, "old" * 6, 1000, 1061.0)
    assert not ledger.use(ID, "new" * 6, 1062, 1001.0)
    assert ledger.use(ID, "edge" * 4, 1000, 1060.0)
    assert len(ledger) == 1


def test_nonces_are_forgotten_once_their_request_is_stale_anyway() -> None:
    ledger = NonceLedger(60, started=0)
    for i in range(100):
        assert ledger.use(ID, f"nonce-{i:010d}", 1000, 1000.0 + i / 10)
    assert len(ledger) == 100
    # 2 windows later every one of them fails the timestamp check; memory is given back
    assert ledger.use(ID, "later" * 4, 1130, 1130.0)
    assert len(ledger) == 1
    assert not ledger.use(ID, "nonce-0000000000", 1000, 1130.0)  # and it stays refused


def test_a_new_ledger_refuses_what_was_stamped_before_it() -> None:
    ledger = NonceLedger(60, started=1000.5)
    assert not ledger.use(ID, "before-start", 1000.4, 1001.0)  # maybe spent with a predecessor
    assert ledger.use(ID, "after-start0", 1000.5, 1001.0)


def test_at_the_cap_a_dropped_nonce_still_cannot_be_replayed() -> None:
    ledger = NonceLedger(60, started=0, limit=3)
    for i, ts in enumerate((1000, 1001, 1002, 1003)):
        assert ledger.use(ID, f"nonce-{i:010d}", ts, 1003.0)
    assert len(ledger) == 3  # the first was dropped ...
    assert not ledger.use(ID, "nonce-0000000000", 1000, 1003.5)  # ... and refused as stale
    assert not ledger.fresh(1000, 1003.5) and ledger.fresh(1001, 1003.5)
    assert len(ledger) == 3


def test_the_mac_is_hmac_sha256_over_the_documented_message() -> None:
    key = proof.proof_key("tok")
    body = b'{"a": 1}'
    message = b"\n".join([b"rampartd-hmac-v1", b"POST", b"/v1/tool/exec?ask=host", b"1700000000",
                          b"n" * 16, hashlib.sha256(body).hexdigest().encode()])
    assert proof.request_mac(key, "POST", "/v1/tool/exec?ask=host", "1700000000", "n" * 16,
                             body) == hmac.new(key, message, "sha256").hexdigest()
    assert key == hashlib.sha256(b"rampartd-proof" + b"tok").digest()
    assert proof.key_id("tok") == hashlib.sha256(b"tok").hexdigest()


def test_the_authorization_header_parses_strictly() -> None:
    header = proof.authorization(ID, b"k", "POST", "/v1/tool/x", "1700000000", "n" * 16, b"")
    scheme, _, params = header.partition(" ")
    assert scheme == proof.SCHEME
    fields = proof.parse_authorization(params)
    assert fields is not None and fields["id"] == ID and fields["ts"] == "1700000000"
    for bad in (params + ", ts=1", params.replace("id=", "key="), params.replace("ts=", "ts=-"),
                params.replace("nonce=", "nonce=!"), params.replace(ID, ID.upper()),
                params.rpartition(",")[0], "", "id"):
        assert proof.parse_authorization(bad) is None, bad
