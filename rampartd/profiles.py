"""The shipped policy profiles: which exist, their text, and how three derive from the standard.

`standard.yaml` is written by hand; `paranoid.yaml`, `ci.yaml` and `yolo.yaml` are derived
from it (`python -m rampartd.profiles` rewrites them in policies/), so a fix to the standard
policy reaches every profile and a test keeps the shipped files in step.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rampartd.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Profile:
    """One shipped policy file."""

    name: str
    summary: str

    @property
    def file_name(self) -> str:
        """The file it is shipped and seeded as."""
        return f"{self.name}.yaml"


PROFILES: tuple[Profile, ...] = (
    Profile("standard", "everyday work allowed; attacks denied, risky changes asked about"),
    Profile("paranoid", "the standard policy, and ask about anything not known to be safe"),
    Profile("ci", "the standard policy for unattended runs: every ask becomes deny"),
    Profile("yolo", "only self-protection, destruction and credentials; everything else allowed"),
)
PROFILE_NAMES: tuple[str, ...] = tuple(p.name for p in PROFILES)
DEFAULT_PROFILE = "standard"

# The standard policy's policies that yolo keeps (besides the daemon's own protection).
YOLO_KEEPS = re.compile(r"rampartd-.*|destruction|credentials(-.*)?")

# What paranoid adds to the standard policy: the only calls that need nobody's approval.
PARANOID_SAFE = """\
  # ---------------------------------------------------------------- known safe (paranoid only)
  - name: known-safe-commands
    description: Commands that only read and inspect; any other command is asked about
    priority: 100
    match:
      tool: exec
    rules:
      - action: allow
        when:
          command_matches:
            - 're:^(ls|ll|pwd|cat|head|tail|less|more|wc|file|stat|du|df|tree)(\\s|$)'
            - 're:^(which|type|whoami|id|uname|date|echo|printf|true|nproc|free|uptime)(\\s|$)'
            - 're:^(sort|uniq|cut|diff|cmp|jq|rg|grep|egrep|fgrep|basename|dirname)(\\s|$)'
            - 're:^(realpath|readlink|md5sum|sha1sum|sha256sum|ps|man|tldr|clear)(\\s|$)'
            - 're:^git\\s+(status|diff|log|show|blame|branch|remote|rev-parse)(\\s|$)'
            - 're:^git\\s+(describe|shortlog|ls-files|grep)(\\s|$)'
      - action: allow
        when:
          command_matches: ['re:^find\\s']
          command_not_matches: ['re:\\s-(delete|exec|execdir|ok|okdir|fprint|fprintf|fls)(\\s|$)']

  - name: known-safe-reads
    description: Reading and searching files; the credential policies still decide first
    priority: 100
    match:
      tool: [read, grep, glob]
    rules:
      - action: allow
        when:
          default: true
"""


def profile(name: str) -> Profile:
    """The shipped profile of that name (ConfigError naming the choices if there is none)."""
    for p in PROFILES:
        if p.name == name:
            return p
    raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}")


def profile_text(name: str) -> str:
    """The packaged policy text of a profile."""
    file_name = profile(name).file_name
    return resources.files("rampartd.data").joinpath(file_name).read_text(encoding="utf-8")


def check_policy_dir(policy_dir: Path, name: str) -> None:
    """Refuse a directory that holds another shipped profile and not this one (ConfigError)."""
    wanted = profile(name)
    if (policy_dir / wanted.file_name).exists():
        return
    others = [p.file_name for p in PROFILES if (policy_dir / p.file_name).exists()]
    if others:
        raise ConfigError(f"policy directory {policy_dir} holds {', '.join(others)}, not "
                          f"{wanted.file_name}; profile {name!r} only seeds an empty directory "
                          f"(move those files away or choose another policy_dir)")


# ---------------------------------------------------------------- deriving profiles

_POLICY_START = re.compile(r"^  - name: (\S+)\s*$", re.MULTILINE)


def _split(standard: str) -> tuple[str, str, list[tuple[str, str]]]:
    """(header comments, settings lines through `policies:`, [(policy name, its block)])."""
    head, sep, body = standard.partition("\npolicies:\n")
    if not sep:
        raise ValueError("the standard policy has no 'policies:' list")
    lines = head.splitlines(keepends=True)
    n = 0
    while n < len(lines) and lines[n].startswith("#"):
        n += 1
    starts = [m.start() for m in _POLICY_START.finditer(body)]
    blocks: list[tuple[str, str]] = []
    for i, start in enumerate(starts):
        # A block runs to the next policy, without the section comment that introduces it.
        end = starts[i + 1] if i + 1 < len(starts) else len(body)
        text = body[start:end]
        text = re.sub(r"(\n  # -+[^\n]*\n?)+\Z", "\n", text)
        name = _POLICY_START.match(text)
        assert name is not None
        blocks.append((name.group(1), text))
    return "".join(lines[:n]), "".join(lines[n:]) + sep.lstrip("\n"), blocks


def _header(name: str, text: str) -> str:
    p = profile(name)
    return (f"# rampartd {p.name} profile: {p.summary}.\n#\n{text}"
            f"#\n# Derived from standard.yaml by `python -m rampartd.profiles`: change the "
            f"standard policy\n# and run it again rather than editing this file by hand.\n")


def derive(name: str, standard: str) -> str:
    """The text of a derived profile (paranoid, ci or yolo) from the standard policy's text."""
    _, settings, blocks = _split(standard)
    body = "".join(block for _, block in blocks)
    if name == "ci":
        header = ("# Nobody is there to answer an approval in an unattended run, so every rule "
                  "that\n# would ask a person denies instead; watch and allow are unchanged. A "
                  "command\n# rampartd cannot parse is still asked about, and that ask expires "
                  "into a deny.\n")
        body = re.sub(r"^(\s+- action:) ask\s*$", r"\1 deny", body, flags=re.MULTILINE)
        return _header(name, header) + settings + body
    if name == "yolo":
        header = ("# For throw-away machines and containers: only what cannot be undone or "
                  "leaks\n# secrets is stopped (the daemon's own protection is built in).\n")
        kept = "".join(block for policy, block in blocks if YOLO_KEEPS.fullmatch(policy))
        return _header(name, header) + settings + kept
    if name == "paranoid":
        header = ("# Nothing runs unless a rule allows it: calls no policy speaks about are "
                  "asked\n# about, and only reading and inspecting is known to be safe.\n")
        settings = re.sub(r"^default_action: \w+$", "default_action: ask", settings,
                          flags=re.MULTILINE)
        return _header(name, header) + settings + body + PARANOID_SAFE
    raise ValueError(f"profile {name!r} is not derived")


def main(argv: list[str]) -> int:
    """Rewrite the derived profiles beside the given standard.yaml."""
    if len(argv) != 1:
        print("usage: python -m rampartd.profiles policies/standard.yaml", file=sys.stderr)
        return 2
    standard = Path(argv[0])
    text = standard.read_text(encoding="utf-8")
    for name in ("paranoid", "ci", "yolo"):
        (standard.parent / f"{name}.yaml").write_text(derive(name, text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
