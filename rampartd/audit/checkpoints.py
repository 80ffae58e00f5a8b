"""Signed checkpoints: the Ed25519 key pair in the home and the checkpoints.jsonl file.

A checkpoint is the chain head `{seq, hash, ts}` signed with `signing.key`. The file lives
outside the database, so removing the newest rows of the chain (which leaves a valid but
shorter chain) is detected: the chain no longer reaches the last signed head.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from rampartd.audit.chain import CheckpointRef, format_ts
from rampartd.home import write_private

KEY_FILE = "signing.key"
PUBLIC_KEY_FILE = "signing.pub"
CHECKPOINTS_FILE = "checkpoints.jsonl"


def _public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def load_or_create_signing_key(home: Path) -> Ed25519PrivateKey:
    """The home's Ed25519 private key, created (0600, with signing.pub) on first use."""
    key_path, pub_path = home / KEY_FILE, home / PUBLIC_KEY_FILE
    if not key_path.exists():
        fresh = Ed25519PrivateKey.generate()
        pem = fresh.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
        # replace=False: when two processes start together, both end up with the same key.
        write_private(key_path, pem, replace=False)
    os.chmod(key_path, 0o600)
    loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{key_path} is not an Ed25519 private key")
    public = _public_pem(loaded)
    if not pub_path.exists() or pub_path.read_bytes() != public:
        write_private(pub_path, public)  # 0600 like every file in the home
    return loaded


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read signing.pub; ValueError when it is not an Ed25519 public key."""
    loaded = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(loaded, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return loaded


def _signed_bytes(seq: int, head_hash: str, ts: str) -> bytes:
    data: bytes = rfc8785.dumps({"seq": seq, "hash": head_hash, "ts": ts})
    return data


def sign_checkpoint(key: Ed25519PrivateKey, seq: int, head_hash: str) -> dict[str, Any]:
    """A checkpoint line for the head (seq, hash), signed now."""
    when = format_ts(time.time_ns() // 1000)
    signature = key.sign(_signed_bytes(seq, head_hash, when))
    return {"seq": seq, "hash": head_hash, "ts": when,
            "sig": base64.b64encode(signature).decode("ascii")}


def append_checkpoint(path: Path, checkpoint: dict[str, Any]) -> None:
    """Append one checkpoint line durably (fsync), starting a new line if the last was torn."""
    line = json.dumps(checkpoint, separators=(",", ":")).encode("utf-8") + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def has_checkpoints(path: Path) -> bool:
    """True if the checkpoint file exists and is not empty (its lines are not checked)."""
    try:
        return bool(path.read_bytes().strip())
    except FileNotFoundError:
        return False


@dataclass(frozen=True)
class CheckpointFile:
    """What checkpoints.jsonl says: the verified checkpoints and the first problem, if any."""

    checkpoints: tuple[CheckpointRef, ...]
    error: str | None = None


def _check_line(public_key: Ed25519PublicKey, text: str) -> CheckpointRef:
    data = json.loads(text)
    seq, head_hash, ts, sig = data["seq"], data["hash"], data["ts"], data["sig"]
    if not (isinstance(seq, int) and isinstance(head_hash, str) and isinstance(ts, str)
            and isinstance(sig, str)):
        raise ValueError("wrong field types")
    public_key.verify(base64.b64decode(sig, validate=True), _signed_bytes(seq, head_hash, ts))
    return CheckpointRef(seq=seq, hash=head_hash, ts=ts)


def read_checkpoints(path: Path, public_key_path: Path) -> CheckpointFile:
    """Read and verify every checkpoint line; a missing file means no checkpoints yet."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return CheckpointFile(())
    good: list[CheckpointRef] = []
    if not any(line.strip() for line in lines):
        return CheckpointFile(())
    try:
        public_key = load_public_key(public_key_path)
    except (OSError, ValueError) as exc:
        return CheckpointFile((), f"cannot check {path.name}: public key {public_key_path}: {exc}")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            good.append(_check_line(public_key, line))
        except InvalidSignature:
            return CheckpointFile(tuple(good),
                                  f"{path.name} line {number}: signature does not verify")
        except (ValueError, KeyError, TypeError):
            return CheckpointFile(tuple(good), f"{path.name} line {number}: not a checkpoint")
    return CheckpointFile(tuple(good))
