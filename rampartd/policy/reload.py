"""Hot reload: hold the active PolicySet and swap it when the directory changes.

`poll()` is a cheap stat-based check meant to run every ~250 ms (files modified in the last
two seconds are also hashed); an edit is picked up on the next poll, and a save that does
not change the content does not reload. A broken edit never replaces the active set: the
error is kept in `last_error`, logged once, and the last good set stays in force until the
files are fixed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields, replace
from pathlib import Path

from rampartd.errors import PolicyError
from rampartd.policy.compiler import compile_documents, load_policy_dir
from rampartd.policy.loader import RawDoc, read_policy_dir
from rampartd.policy.policyset import PolicySet

log = logging.getLogger("rampartd.policy")

# Timestamps are only as fine as the kernel's clock tick, so a file changed twice within one
# tick without changing size looks unchanged to stat; recently modified files are hashed.
RECENT_SECONDS = 2.0

Fingerprint = tuple[tuple[str, str], ...] | str
StatKey = tuple[str, int, int, int, int]


def fingerprint(directory: Path, digests: dict[StatKey, str]) -> Fingerprint:
    """The directory's policy files as (name, content digest); `digests` caches by stat."""
    now = time.time()
    fresh: dict[StatKey, str] = {}
    entries: list[tuple[str, str]] = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.name.startswith(".") or not entry.name.endswith(".yaml"):
                    continue
                st = entry.stat()
                key = (entry.name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
                digest = digests.get(key)
                if digest is None or now - st.st_mtime < RECENT_SECONDS:
                    try:
                        digest = hashlib.blake2b(Path(entry.path).read_bytes(),
                                                 digest_size=16).hexdigest()
                    except OSError:
                        digest = "unreadable"
                fresh[key] = digest
                entries.append((entry.name, digest))
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}"
    digests.clear()
    digests.update(fresh)
    return tuple(sorted(entries))


def load_with_builtin(path: Path, builtin: Sequence[RawDoc], *, home: str | None = None,
                      tool_names: Mapping[str, str] | None = None) -> PolicySet:
    """The directory's policies with the built-in documents' policies ahead of all of them,
    whatever priority a file claims; a file cannot reuse a built-in policy's name."""
    return compile_with_builtin(list(read_policy_dir(path)), builtin, source_dir=path, home=home,
                                tool_names=tool_names)


def compile_with_builtin(docs: Sequence[RawDoc], builtin: Sequence[RawDoc], *,
                         source_dir: Path | None = None, home: str | None = None,
                         tool_names: Mapping[str, str] | None = None) -> PolicySet:
    """Parsed documents compiled with the built-in documents' policies ahead of all of them
    (see load_with_builtin)."""
    policy_set = compile_documents([*builtin, *docs], source_dir=source_dir,
                                   home=home, tool_names=tool_names)
    files = {doc.file for doc in builtin}
    first = tuple(p for p in policy_set.policies if p.file in files)
    rest = tuple(p for p in policy_set.policies if p.file not in files)
    # A new set, so it starts with empty caches (the private fields), not the old one's.
    caches = {f.name: f.default_factory() for f in fields(PolicySet)
              if f.name.startswith("_") and f.default_factory is not MISSING}
    return replace(policy_set, policies=first + rest, builtin=tuple(p.name for p in first),
                   **caches)


class PolicyHolder:
    """The active policy set of a directory; loads it at construction (PolicyError if broken)."""

    def __init__(self, path: Path, *, home: str | None = None,
                 tool_names: Mapping[str, str] | None = None,
                 builtin: Sequence[RawDoc] = ()) -> None:
        self.path = Path(path)
        self.home = home
        self.tool_names = dict(tool_names or {})
        self.builtin = tuple(builtin)  # compiled with every load, ahead of the directory's
        self.last_error: PolicyError | None = None
        self._digests: dict[StatKey, str] = {}
        self._stamp = fingerprint(self.path, self._digests)
        self._current = self._load()
        self._current.warm()  # the first call after a (re)load should not pay for the plans

    def _load(self) -> PolicySet:
        if not self.builtin:
            return load_policy_dir(self.path, home=self.home, tool_names=self.tool_names)
        return load_with_builtin(self.path, self.builtin, home=self.home,
                                 tool_names=self.tool_names)

    @property
    def current(self) -> PolicySet:
        """The policy set in force."""
        return self._current

    def reload(self, stamp: Fingerprint | None = None) -> PolicySet:
        """Load the directory now; on PolicyError keep the last good set and re-raise."""
        self._stamp = stamp if stamp is not None else fingerprint(self.path, self._digests)
        try:
            new = self._load()
        except PolicyError as exc:
            if self.last_error is None or self.last_error.message != exc.message:
                log.warning("policy reload failed, keeping the last good set: %s", exc.message)
            self.last_error = exc
            raise
        new.warm()
        self._replace(new)
        self.last_error = None
        return new

    def _replace(self, new: PolicySet) -> None:
        # Freeing a big set in one go holds the GIL for as long as its destructors run (some
        # 80 ms for 1,500 policies, mostly RE2's), however many threads wait. Held here, its
        # pieces are freed one at a time, and other threads get the GIL in between.
        parts = self._current.parts()
        self._current = new
        while parts:
            parts.pop()

    def poll(self) -> bool:
        """Reload if the directory changed; True if a new set was installed."""
        stamp = fingerprint(self.path, self._digests)
        if stamp == self._stamp:
            return False
        try:
            self.reload(stamp)
        except PolicyError:
            return False
        return True
