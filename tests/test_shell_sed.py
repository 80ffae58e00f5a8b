"""sed scripts' own files and commands (rampartd.policy.shell.sed)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rampartd.policy.shell.sed import SedScript, scan_sed, sed_scripts


@pytest.mark.parametrize(("script", "expected"), [
    ("s/a/b/g", SedScript()),
    ("1,10p;$d", SedScript()),
    ("y/abc/xyz/;p", SedScript()),
    ("s/a;b/c/g;3d", SedScript()),  # a `;` inside s/// ends nothing
    ("1r ~/.ssh/id_rsa", SedScript(reads=["~/.ssh/id_rsa"])),
    ("/x/R /etc/shadow", SedScript(reads=["/etc/shadow"])),
    ("w ~/.bashrc", SedScript(writes=["~/.bashrc"])),
    ("s/a/b/w out.txt", SedScript(writes=["out.txt"])),
    ("/start/,/end/{s|a|b|g;W /tmp/o\n}", SedScript(writes=["/tmp/o"])),
    ("1e rm -rf ~", SedScript(commands=["rm -rf ~"])),
    ("s/a/b/;e date", SedScript(commands=["date"])),
    ("s/.*/rm -rf ~/e", SedScript(runs_text=True)),
    ("2e", SedScript(runs_text=True)),
    ("$a\\\nw not-a-file", SedScript()),  # text appended, continued on the next line
    ("a w text to append", SedScript()),
    ("# w comment\np", SedScript()),
    ("\\%w x%d", SedScript()),  # a custom-delimited address is not a command
])
def test_scan_sed(script: str, expected: SedScript) -> None:
    assert scan_sed(script) == expected


@pytest.mark.parametrize(("args", "expected"), [
    (["-n", "1e x", "f"], ["1e x"]),
    (["-e", "1r k", "-e", "s/a/b/w o", "f"], ["1r k", "s/a/b/w o"]),
    (["--expression=2e", "f"], ["2e"]),
    (["-ne", "s/x/y/p", "f"], ["s/x/y/p"]),
    (["-nes/x/y/w o", "f"], ["s/x/y/w o"]),
    (["-ie", "s/a/b/", "f"], ["s/a/b/"]),  # -i takes `e` as its backup suffix
    (["-i.bak", "--", "s/a/b/", "f"], ["s/a/b/"]),
    (["-f", "script.sed", "f"], None),  # the script is in a file this reading cannot see
    ([], []),
])
def test_sed_scripts(args: list[str], expected: list[str] | None) -> None:
    assert sed_scripts(args) == expected


@given(st.text(max_size=200))
def test_scan_sed_never_raises(script: str) -> None:
    found = scan_sed(script)
    assert all(isinstance(x, str) for x in found.reads + found.writes + found.commands)
