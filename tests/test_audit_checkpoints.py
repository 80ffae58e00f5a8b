"""Signed checkpoints: the key pair, when heads are signed, and how the file is read."""

from __future__ import annotations

import asyncio
import json
import stat
import time
from pathlib import Path

from rampartd.audit import AuditStore, RecordDraft, verify_db
from rampartd.audit.checkpoints import (
    append_checkpoint,
    load_or_create_signing_key,
    load_public_key,
    read_checkpoints,
    sign_checkpoint,
)


def lines(home: Path) -> list[dict[str, object]]:
    """The parsed checkpoint lines of a home."""
    path = home / "checkpoints.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_key_pair_is_created_once_with_private_permissions(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path)
    assert stat.S_IMODE((tmp_path / "signing.key").stat().st_mode) == 0o600
    assert (tmp_path / "signing.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    again = load_or_create_signing_key(tmp_path)
    assert again.private_bytes_raw() == key.private_bytes_raw()
    signature = key.sign(b"x")
    load_public_key(tmp_path / "signing.pub").verify(signature, b"x")  # raises if wrong


def test_checkpoint_lines_verify_and_a_forgery_is_named(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path)
    path = tmp_path / "checkpoints.jsonl"
    append_checkpoint(path, sign_checkpoint(key, 3, "sha256:aa"))
    append_checkpoint(path, sign_checkpoint(key, 7, "sha256:bb"))
    read = read_checkpoints(path, tmp_path / "signing.pub")
    assert read.error is None and [c.seq for c in read.checkpoints] == [3, 7]
    forged = sign_checkpoint(key, 9, "sha256:cc")
    forged["hash"] = "sha256:dd"
    append_checkpoint(path, forged)
    read = read_checkpoints(path, tmp_path / "signing.pub")
    assert read.error == "checkpoints.jsonl line 3: signature does not verify"
    assert [c.seq for c in read.checkpoints] == [3, 7]


def test_a_torn_last_line_does_not_swallow_the_next_checkpoint(tmp_path: Path) -> None:
    key = load_or_create_signing_key(tmp_path)
    path = tmp_path / "checkpoints.jsonl"
    path.write_text('{"seq": 1, "ha')
    append_checkpoint(path, sign_checkpoint(key, 2, "sha256:aa"))
    assert path.read_text().splitlines()[1].startswith('{"seq":2')
    assert read_checkpoints(path, tmp_path / "signing.pub").error == \
        "checkpoints.jsonl line 1: not a checkpoint"


def test_missing_file_means_no_checkpoints(tmp_path: Path) -> None:
    read = read_checkpoints(tmp_path / "checkpoints.jsonl", tmp_path / "signing.pub")
    assert read.checkpoints == () and read.error is None


async def test_head_is_signed_every_n_records_and_on_close(tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "rampartd.db", home=tmp_path, checkpoint_every=5,
                                  checkpoint_seconds=3600)
    for i in range(12):
        await store.append(RecordDraft("decision", request={"i": i}))
    signed = [c["seq"] for c in lines(tmp_path)]
    # The chain's first record is signed at once, then every 5th (one record per group here).
    assert signed == [1, 5, 10]
    await store.close()
    final = lines(tmp_path)[-1]
    assert (final["seq"], final["hash"]) == store.head == (12, final["hash"])
    report = verify_db(tmp_path / "rampartd.db", checkpoints=tmp_path / "checkpoints.jsonl")
    assert report["valid"] and report["checkpoint"]["seq"] == 12


async def test_head_is_signed_after_checkpoint_seconds(tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "rampartd.db", home=tmp_path,
                                  checkpoint_every=1000, checkpoint_seconds=0.05)
    try:
        record = await store.append(RecordDraft("decision"))
        deadline = time.monotonic() + 5
        while not lines(tmp_path) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert [(c["seq"], c["hash"]) for c in lines(tmp_path)] == [(1, record["hash"])]
        report = await store.verify()
        assert report["valid"] and report["checkpoint"]["seq"] == 1
    finally:
        await store.close()
    assert len(lines(tmp_path)) == 1  # nothing new since: no extra line on close


async def test_no_home_means_no_checkpoints(tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "rampartd.db")
    await store.append(RecordDraft("decision"))
    await store.close()
    assert not (tmp_path / "checkpoints.jsonl").exists()
    assert not (tmp_path / "signing.key").exists()


async def test_a_checkpoint_follows_the_last_commit_within_checkpoint_seconds(
        tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "rampartd.db", home=tmp_path,
                                  checkpoint_every=1000, checkpoint_seconds=0.2)
    try:
        await store.append(RecordDraft("decision"))
        assert [c["seq"] for c in lines(tmp_path)] == [1]  # first record: signed before answer
        for _ in range(3):
            await store.append(RecordDraft("decision"))
        head_seq = store.head[0]
        deadline = time.monotonic() + 10
        while lines(tmp_path)[-1]["seq"] != head_seq and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # No further commits: the idle writer still signed the newest head on its own.
        assert (lines(tmp_path)[-1]["seq"], lines(tmp_path)[-1]["hash"]) == store.head
    finally:
        await store.close()


async def test_missing_or_emptied_checkpoint_file_is_a_finding(tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "rampartd.db", home=tmp_path)
    for i in range(3):
        await store.append(RecordDraft("decision", request={"i": i}))
    await store.close()
    path = tmp_path / "checkpoints.jsonl"
    assert verify_db(tmp_path / "rampartd.db", checkpoints=path)["valid"]
    for emptied in (b"", b"\n \n"):
        path.write_bytes(emptied)
        report = verify_db(tmp_path / "rampartd.db", checkpoints=path)
        assert not report["valid"] and report["reason"] == "checkpoints_missing"
    path.unlink()
    report = verify_db(tmp_path / "rampartd.db", checkpoints=path)
    assert not report["valid"] and report["reason"] == "checkpoints_missing"
    assert report["records_checked"] == 3


async def test_an_empty_chain_needs_no_checkpoint(tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "rampartd.db", home=tmp_path)
    await store.close()
    report = verify_db(tmp_path / "rampartd.db", checkpoints=tmp_path / "checkpoints.jsonl")
    assert report["valid"] and report["head"]["seq"] == 0


async def test_reopening_without_checkpoints_records_that_they_were_missing(
        tmp_path: Path) -> None:
    store = await AuditStore.open(tmp_path / "rampartd.db", home=tmp_path)
    await store.append(RecordDraft("decision"))
    await store.close()
    (tmp_path / "checkpoints.jsonl").unlink()
    store = await AuditStore.open(tmp_path / "rampartd.db", home=tmp_path)
    try:
        records = await store.after_seq(0)
        assert [r["kind"] for r in records] == ["decision", "audit.checkpoints_missing"]
        assert records[1]["detail"]["head_seq"] == 1
        assert lines(tmp_path)[-1]["seq"] == 2  # signed again from here on
    finally:
        await store.close()
