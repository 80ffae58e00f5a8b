"""Redaction before hashing and compaction of oversized records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from rampartd.audit import AuditStore, EventFilter, RecordDraft, verify_db
from rampartd.audit.redact import (
    MAX_RECORD_BYTES,
    REDACTED,
    compact,
    is_secret_key,
    prepare_payload,
    redact,
    redact_text,
)

BEARER = "eyJhbGciOiJIUzI1NiJ9abcdefghijklmnop"
OPENAI = "sk-proj-Zx9aB3cD4eF5gH6iJ7kL8mN9oP0q"
AWS = "AKIAIOSFODNN7EXAMPLE"
GITHUB = "ghp_16C7e42F292c6912E7710c838347Ae178B4a"
PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAAB\n"
       "-----END OPENSSH PRIVATE KEY-----")
PASSWORD = "hunter2-Correct-Horse"
SECRETS = [BEARER, OPENAI, AWS, GITHUB, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", PASSWORD,
           "my-named-secret-value", "tok-value-123"]


def secret_params() -> dict[str, object]:
    """Tool-call params carrying every kind of secret."""
    return {
        "command": f"curl -H 'Authorization: Bearer {BEARER}' https://api.example.com && "
                   f"OPENAI_API_KEY={OPENAI} AWS_ACCESS_KEY_ID={AWS} git push "
                   f"https://x:{GITHUB}@github.com/o/r && mysql --password={PASSWORD}",
        "content": PEM,
        "env": {"api_key": "my-named-secret-value", "Authorization": "tok-value-123"},
        "note": f"password={PASSWORD} then {GITHUB}",
    }


def test_text_patterns_are_redacted_and_ordinary_text_is_kept() -> None:
    text = redact_text(secret_params()["command"])  # type: ignore[arg-type]
    for secret in (BEARER, OPENAI, AWS, GITHUB, PASSWORD):
        assert secret not in text
    assert text.startswith("curl -H 'Authorization: Bearer [REDACTED]' https://api.example.com")
    assert redact_text(PEM + "\ntail") == "[REDACTED PRIVATE KEY]\ntail"
    assert redact_text("-----BEGIN RSA PRIVATE KEY-----\nMIIEcut") == "[REDACTED PRIVATE KEY]"
    for ordinary in ("git status", "ls -la /tmp", "max_tokens: 4096", "PWD=/home/u",
                     "the token expired", "echo $TOKEN", "--max-tokens 100"):
        assert redact_text(ordinary) == ordinary


def test_secret_keys_are_redacted_whatever_their_value() -> None:
    for key in ("password", "DB_PASSWORD", "token", "access_token", "secret", "client-secret",
                "api_key", "apiKey", "Authorization", "private_key", "credentials"):
        assert is_secret_key(key), key
    for key in ("command", "path", "max_tokens", "token_count", "url", "author"):
        assert not is_secret_key(key), key
    out = redact({"headers": {"Authorization": "x"}, "token": 12345, "password": None,
                  "use_token": True, "items": [{"secret": ["a"]}], "max_tokens": 5})
    assert out == {"headers": {"Authorization": REDACTED}, "token": REDACTED, "password": None,
                   "use_token": True, "items": [{"secret": REDACTED}], "max_tokens": 5}


def test_values_json_cannot_hold_exactly_are_kept_as_text() -> None:
    out = redact({"big": 2**64, "nan": float("nan"), "t": (1, 2), "s": "\ud800x"})
    assert out == {"big": str(2**64), "nan": "nan", "t": [1, 2], "s": "?x"}
    rfc8785.dumps(out)  # canonicalises without error


def test_large_params_are_compacted_to_digest_and_size() -> None:
    big = "x" * 200_000
    payload = {"kind": "decision", "tool": "write",
               "request": {"path": "/tmp/f", "content": big},
               "decision": {"action": "allow", "message": "ok"}}
    out = prepare_payload(payload)
    assert len(rfc8785.dumps(out)) < MAX_RECORD_BYTES
    assert out["request"]["path"] == "/tmp/f"
    stub = out["request"]["content"]
    assert stub == {"compacted": True, "size": len(rfc8785.dumps(big)),
                    "sha256": hashlib.sha256(rfc8785.dumps(big)).hexdigest()}
    assert out["decision"] == payload["decision"]
    assert compact({"kind": "k", "request": {"a": 1}}) == {"kind": "k", "request": {"a": 1}}


def test_huge_everything_is_still_storable() -> None:
    payload = {"kind": "decision", "agent": "a" * 100_000, "session": "s",
               "request": {f"k{i}": "v" * 100 for i in range(5000)},
               "decision": {"action": "deny", "message": "m" * 100_000},
               "detail": {"list": list(range(50_000))}}
    out = prepare_payload(payload)
    assert len(rfc8785.dumps(out)) < MAX_RECORD_BYTES
    assert out["decision"]["action"] == "deny"
    assert out["agent"].startswith("a" * 64) and "compacted sha256:" in out["agent"]


async def test_secrets_never_reach_the_database_a_query_or_an_export(tmp_path: Path) -> None:
    db = tmp_path / "rampartd.db"
    store = await AuditStore.open(db)
    try:
        record = await store.append(RecordDraft(
            "decision", agent="a", session="s", tool="exec", request=secret_params(),
            decision={"action": "allow", "message": f"ran with {OPENAI}"},
            detail={"password": PASSWORD}))
        big = await store.append(RecordDraft("decision", tool="write", request={
            "path": "/tmp/x", "content": "y" * 300_000 + OPENAI}))
        listed, _ = await store.query(EventFilter())
        fetched = await store.get(record["id"])
        exported = b"".join([chunk async for chunk in store.export(EventFilter())])
    finally:
        await store.close()
    texts = {"returned record": json.dumps(record), "query": json.dumps(listed),
             "get": json.dumps(fetched), "export": exported.decode()}
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("rampartd.db"))
    for secret in SECRETS:
        for where, text in texts.items():
            assert secret not in text, (secret, where)
        assert secret.encode() not in raw, secret
    assert record["request"]["env"] == {"api_key": REDACTED, "Authorization": REDACTED}
    assert big["request"]["content"]["compacted"] is True
    assert verify_db(db)["valid"]


@pytest.mark.parametrize(("payload", "secret"), [
    ({"request": {"key": "sk-abcdefghijklmnopqrstuvwx"}}, "sk-abcdefghijklmnopqrstuvwx"),
    ({"request": {"pass_word": "hunter2hunter2"}}, "hunter2hunter2"),
    ({"request": {"api-key": "abcdef123456"}}, "abcdef123456"),
    ({"request": {"PRIVATE_KEY": "abcdef123456"}}, "abcdef123456"),
])
def test_fast_path_never_skips_a_secret(payload: dict[str, Any], secret: str) -> None:
    # Payloads with no other trigger word take the one-scan fast path.
    assert secret not in json.dumps(prepare_payload(payload))
