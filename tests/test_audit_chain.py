"""The pure chain: canonical bytes, the hash formula, record building and the verifier."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from rampartd.audit.chain import (
    BEHIND_CHECKPOINT,
    BROKEN_LINK,
    CHECKPOINT_MISMATCH,
    COLUMN_MISMATCH,
    GAP,
    HASH_MISMATCH,
    RECORD_FIELDS,
    REORDERED,
    CheckpointRef,
    RecordDraft,
    StoredRow,
    build_record,
    canonical_bytes,
    columns_of,
    compute_hash,
    format_ts,
    parse_ts,
    verify_rows,
)


def make_chain(n: int, payloads: list[dict[str, Any]] | None = None) -> list[StoredRow]:
    """n stored rows built with the chain functions, as the writer stores them."""
    rows: list[StoredRow] = []
    prev = ""
    for i in range(n):
        payload = payloads[i] if payloads else RecordDraft(
            "decision", agent="a", session="s", tool="exec", request={"command": f"ls {i}"},
            decision={"action": "allow", "matched_policies": ["p"]}).payload()
        record, canonical, digest = build_record(
            payload, seq=i + 1, record_id=f"01J{i:023d}", ts=format_ts(1_700_000_000_000_000 + i),
            prev_hash=prev)
        rows.append(StoredRow._make((*columns_of(record), digest, canonical)))
        prev = digest
    return rows


def test_hash_is_sha256_of_prev_hash_and_canonical_bytes() -> None:
    record, canonical, digest = build_record(
        {"kind": "decision", "agent": "a", "request": {"b": 1, "a": "x"}},
        seq=1, record_id="01J0000000000000000000000A", ts="2026-11-22T10:15:30.123456Z",
        prev_hash="")
    assert list(record) == list(RECORD_FIELDS)
    assert record["detail"] is None and record["prev_hash"] == ""
    assert canonical == rfc8785.dumps(record)
    assert canonical.startswith(b'{"agent":"a","approval":null,"batch_id":null,')
    assert digest == "sha256:" + hashlib.sha256(b"" + canonical).hexdigest()
    _, canonical2, digest2 = build_record({"kind": "x"}, seq=2, record_id="01J00000000000000000B",
                                          ts="2026-11-22T10:15:30.123457Z", prev_hash=digest)
    assert digest2 == "sha256:" + hashlib.sha256(digest.encode() + canonical2).hexdigest()


def test_canonical_bytes_ignore_hash_and_key_order() -> None:
    a = canonical_bytes({"b": 1, "a": {"y": 2, "x": 1}, "hash": "sha256:x"})
    b = canonical_bytes({"a": {"x": 1, "y": 2}, "b": 1})
    assert a == b == b'{"a":{"x":1,"y":2},"b":1}'
    assert compute_hash("", a) != compute_hash("p", a)


def test_timestamps_are_rfc3339_utc_with_microseconds() -> None:
    assert format_ts(1_795_342_530_123_456) == "2026-11-22T10:15:30.123456Z"
    assert format_ts(0) == "1970-01-01T00:00:00.000000Z"
    assert parse_ts("2026-11-22T11:15:30.5+01:00").isoformat() == "2026-11-22T10:15:30.500000+00:00"


def test_columns_copy_record_values_and_the_decision_action() -> None:
    record, _, _ = build_record(
        {"kind": "decision", "agent": "a", "session": "s", "tool": "exec", "run_id": "r",
         "decision": {"action": "deny"}}, seq=3, record_id="I", ts="T", prev_hash="P")
    assert columns_of(record) == (3, "I", "T", "decision", "a", "s", "exec", "deny", "r", "P")
    no_decision, _, _ = build_record({"kind": "agent.created"}, seq=1, record_id="I", ts="T",
                                     prev_hash="")
    assert columns_of(no_decision)[7] is None


def test_intact_chain_is_valid() -> None:
    rows = make_chain(5)
    report = verify_rows(rows)
    assert report == {"valid": True, "records_checked": 5, "first_broken_seq": None,
                      "reason": None, "detail": None,
                      "head": {"seq": 5, "hash": rows[-1].hash}, "checkpoint": None}
    assert verify_rows([])["head"] == {"seq": 0, "hash": ""}


def test_each_break_has_its_reason_and_seq() -> None:
    rows = make_chain(6)
    edited = rows[2]._replace(record=rows[2].record.replace(b"ls 2", b"ls 9"))
    cases = {
        HASH_MISMATCH: ([*rows[:2], edited, *rows[3:]], 3),
        COLUMN_MISMATCH: ([*rows[:3], rows[3]._replace(action="deny"), *rows[4:]], 4),
        GAP: (rows[:1] + rows[2:], 2),
        REORDERED: ([*rows[:2], rows[3]._replace(seq=3), rows[2]._replace(seq=4), *rows[4:]], 3),
    }
    for reason, (tampered, seq) in cases.items():
        report = verify_rows(tampered)
        assert (report["valid"], report["reason"], report["first_broken_seq"]) == \
            (False, reason, seq), reason
    # A rewritten record with a recomputed hash no longer links to the next one.
    record = json.loads(rows[1].record)
    record["request"] = {"command": "rm -rf /"}
    forged = canonical_bytes(record)
    forged_row = rows[1]._replace(record=forged, hash=compute_hash(record["prev_hash"], forged))
    report = verify_rows([*rows[:1], forged_row, *rows[2:]])
    assert (report["reason"], report["first_broken_seq"]) == (BROKEN_LINK, 3)


def test_checkpoints_detect_truncation_and_rewrites() -> None:
    rows = make_chain(6)
    signed = [CheckpointRef(6, rows[5].hash, "2026-11-22T10:00:00.000000Z")]
    assert verify_rows(rows, checkpoints=signed)["valid"]
    truncated = verify_rows(rows[:4], checkpoints=signed)
    assert (truncated["reason"], truncated["first_broken_seq"]) == (BEHIND_CHECKPOINT, 5)
    assert truncated["checkpoint"]["seq"] == 6
    wrong = verify_rows(rows, checkpoints=[CheckpointRef(3, "sha256:other", "t")])
    assert (wrong["reason"], wrong["first_broken_seq"]) == (CHECKPOINT_MISMATCH, 3)
    bad_sig = verify_rows(rows, checkpoints=signed, checkpoint_error="line 2: bad")
    assert (bad_sig["valid"], bad_sig["reason"]) == (False, "bad_checkpoint_signature")


def test_verifier_stops_at_the_break_when_head_is_given() -> None:
    rows = make_chain(10)
    broken = rows[:3] + rows[4:]
    report = verify_rows(iter(broken), head=(10, rows[-1].hash))
    assert report["records_checked"] == 4
    assert report["head"] == {"seq": 10, "hash": rows[-1].hash}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["request", "detail", "approval"]),
                                st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
                min_size=1, max_size=6),
       st.data())
def test_any_chain_verifies_and_any_byte_flip_is_caught(payloads: list[dict[str, Any]],
                                                        data: st.DataObject) -> None:
    payloads = [{"kind": "k", **p} for p in payloads]
    rows = make_chain(len(payloads), payloads)
    assert verify_rows(rows)["valid"]
    index = data.draw(st.integers(0, len(rows) - 1))
    pos = data.draw(st.integers(0, len(rows[index].record) - 1))
    raw = bytearray(rows[index].record)
    raw[pos] ^= 0x01
    rows[index] = rows[index]._replace(record=bytes(raw))
    report = verify_rows(rows)
    assert not report["valid"]
    assert report["first_broken_seq"] == index + 1


jcs_keys = st.text(alphabet=st.characters(codec="utf-8"), max_size=6)
jcs_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=12)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(jcs_keys, inner, max_size=4),
    max_leaves=16)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(jcs_keys, jcs_values, max_size=6))
def test_canonical_bytes_are_exactly_rfc8785(value: dict[str, Any]) -> None:
    # Covers control characters, astral-plane keys, floats and big integers.
    # canonical_bytes leaves out a record's own `hash`.
    without_hash = {k: v for k, v in value.items() if k != "hash"}
    assert canonical_bytes(value) == rfc8785.dumps(without_hash)


def test_canonical_bytes_edge_cases_match_rfc8785() -> None:
    value: Any
    for value in ({"\U0001f600": 1, "\uffff": 2, "a": "\x00\x1f\u2028\"\\/"},
                  {"n": 2**53 - 1, "f": 1e21, "g": 0.1, "neg": -0.0, "t": [True, None]}):
        assert canonical_bytes(value) == rfc8785.dumps(value)
