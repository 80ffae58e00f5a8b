"""The runtime home directory: creating it, the admin token file, and the seeded policies."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

from rampartd import proof
from rampartd.errors import ConfigError

TOKEN_BYTES = 32


def ensure_home(home: Path) -> None:
    """Create the home directory 0700 (or tighten it); fail with one line if it is unusable."""
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        probe = home / ".write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"home directory {home} is not usable: {exc.strerror or exc}") from None


def tighten_home(home: Path) -> None:
    """Make the home and its directories 0700 and every file in it 0600 (symlinks untouched)."""
    os.chmod(home, 0o700)
    for root, dirs, files in os.walk(home):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            wanted = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
            if stat.S_IMODE(st.st_mode) != wanted:
                os.chmod(path, wanted)


def write_private(path: Path, data: bytes, *, replace: bool = True) -> bool:
    """Write a 0600 file atomically; with replace=False an existing file is kept (returns False)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            # link() fails if the file exists, so two daemons starting at once agree on one token.
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def new_token() -> str:
    """A fresh random URL-safe token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def ensure_token(path: Path) -> bool:
    """Create the admin token file unless it exists (then keep it 0600); True if created."""
    if path.exists():
        if path.stat().st_mode & 0o077:  # readable by others: the token is no longer private
            os.chmod(path, 0o600)
        return False
    return write_private(path, (new_token() + "\n").encode(), replace=False)


def rotate_token(path: Path) -> None:
    """Replace the admin token atomically; a running daemon notices the new file."""
    write_private(path, (new_token() + "\n").encode())


def read_token(path: Path) -> str:
    """Read the admin token; a missing or empty file is a ConfigError."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"no token file at {path}; start `rampartd serve` once to create it") \
            from None
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror}") from None
    if not token:
        raise ConfigError(f"token file {path} is empty")
    return check_token(token, f"token file {path}")


def check_token(token: str, source: str) -> str:
    """A token must be one printable word; the error never repeats the token itself."""
    if not token or not token.isprintable() or any(c.isspace() for c in token):
        raise ConfigError(f"{source} holds an invalid token (empty, or with spaces or "
                          "control characters); rotate or reset it")
    return token


class AdminToken:
    """The admin token, re-read whenever the file changes so rotation needs no restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._value = b""
        self._signing: tuple[bytes, str, bytes] = (b"", "", b"")  # token, key id, key K

    def current(self) -> bytes:
        """The token's bytes as of now (one stat per call; the file is read only on change)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return b""  # no token file: nothing matches, fail closed
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            try:
                self._value = read_token(self.path).encode()
            except ConfigError:
                self._value = b""
            self._stamp = stamp
        return self._value

    def signing_key(self) -> tuple[str, bytes] | None:
        """The current token's key id and signing key K (derived again only after a rotation);
        None while there is no token."""
        value = self.current()
        if not value:
            return None
        if self._signing[0] != value:
            token = value.decode()
            self._signing = (value, proof.key_id(token), proof.proof_key(token))
        return self._signing[1], self._signing[2]


def seed_policies(policy_dir: Path, policy_text: str, file_name: str = "standard.yaml") -> bool:
    """Install a shipped policy into an empty or missing policy directory; True if seeded."""
    policy_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if any(policy_dir.glob("*.yaml")):
        return False
    write_private(policy_dir / file_name, policy_text.encode(), replace=False)
    return True
