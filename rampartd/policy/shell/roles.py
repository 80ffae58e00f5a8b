"""What programs do with their arguments: the argument-role table (data) and its reader.

Each entry says which effect kind a program's operands have (`cat` reads them, `rm` deletes
them, `cp` reads all but the last and writes the last), which options take a value and what
that value is (`curl -o FILE` writes FILE), and which flags make the operands whole trees
(`-r`). `roles(argv)` applies the table to one command's arguments; it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rampartd.policy.shell.launchers import takes_next

FILE_KINDS = ("read", "write", "delete", "chmod")
_EMPTY: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Roles:
    """How one program uses its arguments."""

    args: tuple[str, ...] = ()        # effect kinds of every operand
    last: tuple[str, ...] = ()        # kinds of the last operand instead (a destination)
    first: tuple[str, ...] = ()       # kinds of the first operand instead (an archive)
    skip: int = 0                     # leading operands that are no targets (a pattern, a mode)
    skip_unless: frozenset[str] = _EMPTY   # options that give what `skip` would take (`-e`)
    values: frozenset[str] = _EMPTY        # options whose value is no target
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # option → value kinds
    recursive: frozenset[str] = _EMPTY     # flags making operands whole trees
    always_recursive: bool = False
    flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # flag → extra kinds
    last_flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # … of the last
    keyvals: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # `of=` → kinds
    hosts: bool = False               # operands that look like hosts are network targets
    host_first: bool = False          # only the first operand is a host (`ssh HOST CMD…`)
    at_files: bool = False            # `@file` / `name=@file` values are reads (curl -d)
    tree_options: frozenset[str] = _EMPTY  # options whose value is a whole tree (`unzip -d`)
    # The letters X of the one-letter `-X` names above, so a flag cluster (`-rf`) is read
    # letter by letter with set lookups (derived once, when the table is built).
    option_letters: frozenset[str] = field(init=False, repr=False, compare=False)
    value_letters: frozenset[str] = field(init=False, repr=False, compare=False)
    recursive_letters: frozenset[str] = field(init=False, repr=False, compare=False)
    flag_letters: frozenset[str] = field(init=False, repr=False, compare=False)
    last_flag_letters: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        options = _letters(self.options)
        derived = {"option_letters": options, "value_letters": options | _letters(self.values),
                   "recursive_letters": _letters(self.recursive),
                   "flag_letters": _letters(self.flags),
                   "last_flag_letters": _letters(self.last_flags)}
        for name, letters in derived.items():
            object.__setattr__(self, name, letters)  # (the dataclass is frozen)


def _letters(names: Iterable[str]) -> frozenset[str]:
    """X for every one-letter option name `-X` among names."""
    return frozenset(name[1] for name in names if len(name) == 2 and name[0] == "-")


class Target(NamedTuple):
    """One argument a program acts on: argv index, effect kinds, whole tree or not."""

    at: int  # argv index (-1: the working directory)
    kinds: tuple[str, ...]
    recursive: bool = False
    value: str | None = None  # the text when it is part of an argument (`of=FILE`)


# The defaults of the fields after `recursive`, for the operand targets roles() builds.
_TARGET_TAIL = Target(0, ())[3:]


_R = ("read",)
_W = ("write",)
_RW = ("read", "write")
_D = ("delete",)
_REC = frozenset({"-r", "-R", "--recursive"})


def _same(names: str, roles: Roles) -> dict[str, Roles]:
    return dict.fromkeys(names.split(), roles)


_READERS = Roles(args=_R)
_HEAD = Roles(args=_R, values=frozenset({"-n", "-c", "--lines", "--bytes", "-s",
                                         "--sleep-interval", "--pid"}))
_GREP = Roles(args=_R, skip=1, skip_unless=frozenset({"-e", "-f", "--regexp", "--file"}),
              values=frozenset({"-e", "-m", "-A", "-B", "-C", "--include", "--exclude",
                                "--exclude-dir", "--regexp", "-g", "--glob", "-t", "--type",
                                "-T", "--type-not", "-j", "-M", "--max-count", "--color",
                                "--context", "--after-context", "--before-context"}),
              options={"-f": _R, "--file": _R}, recursive=frozenset({"-r", "-R", "--recursive",
                                                                     "-d", "--directories"}))
_RG = Roles(args=_R, skip=1, skip_unless=_GREP.skip_unless, values=_GREP.values,
            options=_GREP.options, always_recursive=True)
_COPY = Roles(args=_R, last=_W, values=frozenset({"-S", "--suffix", "-m", "--mode", "-o",
                                                   "--owner", "-g", "--group"}),
              options={"-t": _W, "--target-directory": _W},
              recursive=frozenset({"-r", "-R", "--recursive", "-a", "--archive"}))
_CHMOD = Roles(args=("chmod",), skip=1, values=frozenset({"--reference"}), recursive=_REC)
_NET = Roles(hosts=True, values=frozenset({"-p", "-s", "-w", "-q", "-i", "-x", "-X", "-W", "-t",
                                           "-c", "-f", "-b", "-m", "-T", "-I", "-Q", "-l", "-n",
                                           "-e", "-g", "-O", "-4", "-6"}))
_SSH_VALUES = frozenset({"-p", "-l", "-o", "-L", "-R", "-D", "-J", "-W", "-b", "-c", "-e", "-m",
                         "-O", "-S", "-w", "-E", "-Q", "-B", "-P"})

PROGRAMS: dict[str, Roles] = {
    **_same("cat tac less more bat batcat nl od xxd hexdump strings base64 base32 wc "
            "paste column md5sum sha1sum sha224sum sha256sum sha384sum "
            "sha512sum b2sum cksum sum file diff cmp comm join iconv expand unexpand rev zcat "
            "gzcat bzcat xzcat zless zmore lzcat source . view look shuf", _READERS),
    # stat, du, readlink and realpath print metadata, not content: no read of their operands
    # (du reads a list of names from --files0-from, and prints the names it cannot find)
    "du": Roles(options={"--files0-from": _R}),
    **_same("head tail", _HEAD),
    "sort": Roles(args=_R, values=frozenset({"-k", "-t", "-S", "-T", "--key",
                                             "--field-separator", "--buffer-size"}),
                  options={"-o": _W, "--output": _W}),
    "cut": Roles(args=_R, values=frozenset({"-d", "-f", "-c", "-b", "--delimiter", "--fields"})),
    **_same("uniq fold fmt pr nl", Roles(args=_R, values=frozenset({"-f", "-s", "-w", "-l",
                                                                    "-v", "-i", "-b"}))),
    "split": Roles(first=_R, args=_W, values=frozenset({"-l", "-b", "-n", "-a", "-C"})),
    **_same("grep egrep fgrep zgrep zegrep zfgrep", _GREP),
    **_same("rg ag ack", _RG),
    "jq": Roles(args=_R, skip=1, skip_unless=frozenset({"-f", "--from-file"}),
                values=frozenset({"--arg", "--argjson", "--indent", "--tab"}),
                options={"--slurpfile": _R, "--rawfile": _R}),
    "sed": Roles(args=_R, skip=1, skip_unless=frozenset({"-e", "-f", "--expression", "--file"}),
                 values=frozenset({"-e", "--expression", "-l"}), options={"-f": _R, "--file": _R},
                 flags={"-i": _W, "--in-place": _W}),
    # gawk's `-i inplace` edits its files in place (any -i library is read as one, cautiously)
    **_same("awk gawk mawk nawk", Roles(args=_R, skip=1, skip_unless=frozenset({"-f"}),
                                        values=frozenset({"-v", "-F", "-i", "--include"}),
                                        options={"-f": _R},
                                        flags={"-i": _W, "--include": _W})),
    **_same("vi vim nvim nano emacs ed ex pico micro sponge", Roles(args=_RW)),
    **_same("cp gcp", _COPY),
    "install": _COPY,
    "mv": Roles(args=("read", "delete"), last=_W, values=frozenset({"-S", "--suffix"}),
                options={"-t": _W, "--target-directory": _W}, always_recursive=True),
    "ln": Roles(args=_R, last=_W, values=frozenset({"-S", "--suffix"}),
                options={"-t": _W, "--target-directory": _W}),
    **_same("rm unlink srm wipe trash trash-put", Roles(args=_D, recursive=_REC)),
    **_same("rimraf del-cli", Roles(args=_D, always_recursive=True)),
    "rmdir": Roles(args=_D),
    "shred": Roles(args=("write", "delete"), values=frozenset({"-n", "-s", "--iterations",
                                                               "--size", "--random-source"})),
    "tee": Roles(args=_W),
    **_same("touch mkdir mkfifo mknod", Roles(args=_W, values=frozenset(
        {"-r", "-d", "-t", "-m", "--mode", "--reference", "--date"}))),
    # a fresh file or folder named by the template, or inside the -p folder
    "mktemp": Roles(args=_W, options={"-p": _W, "--tmpdir": _W}, values=frozenset({"--suffix"})),
    "truncate": Roles(args=_W, values=frozenset({"-s", "--size", "-r", "--reference"})),
    **_same("chmod chown chgrp chattr chflags", _CHMOD),
    "setfacl": Roles(args=("chmod",), values=frozenset({"-m", "-x", "-M", "-X", "--modify",
                                                        "--remove"}), recursive=_REC),
    "dd": Roles(keyvals={"if": _R, "of": _W}),
    # `zip -m` and `7z -sdel` delete the files they have packed
    "zip": Roles(first=_W, args=_R, values=frozenset({"-x", "-i", "-P", "--password"}),
                 recursive=frozenset({"-r", "-R", "--recurse-paths"}),
                 flags={"-m": _D, "--move": _D}),
    "unzip": Roles(args=_R, options={"-d": _W}, values=frozenset({"-P", "-x"}),
                   tree_options=frozenset({"-d"})),
    **_same("gzip gunzip bzip2 bunzip2 xz unxz zstd lz4", Roles(args=_RW, recursive=_REC)),
    **_same("7z 7za", Roles(args=_RW, recursive=_REC, flags={"-sdel": _D})),
    # `-i KEY` is the identity ssh signs with: the key is used, never read out or sent
    "scp": Roles(args=_R, last=_W, hosts=True, values=_SSH_VALUES | {"-i"},
                 options={"-F": _R}, recursive=frozenset({"-r"})),
    "rsync": Roles(args=_R, last=_W, hosts=True,
                   values=frozenset({"-e", "--rsh", "--exclude", "--include", "--filter", "-f",
                                     "-T", "--temp-dir", "--chmod", "--chown", "-M",
                                     "--backup-dir", "--suffix", "--port"}),
                   options={"--files-from": _R, "--exclude-from": _R, "--include-from": _R,
                            "--password-file": _R},
                   recursive=frozenset({"-r", "-a", "--recursive", "--archive"}),
                   flags={"--remove-source-files": _D},
                   last_flags={"--delete": _D, "--delete-before": _D, "--delete-after": _D,
                               "--delete-during": _D, "--delete-excluded": _D, "--del": _D}),
    "curl": Roles(values=frozenset({"-A", "--user-agent", "-X", "--request",
                                    "-u", "--user", "-e", "--referer", "-x", "--proxy", "-m",
                                    "--max-time", "-w", "--write-out", "--connect-timeout",
                                    "--retry", "-r", "--range", "-C", "--continue-at",
                                    "--resolve", "--connect-to", "-Y", "-y", "--limit-rate",
                                    "--url", "--proxy-user", "-U", "--interface",
                                    "--dns-servers", "--doh-url", "--preproxy", "--noproxy"}),
                  options={"-o": _W, "--output": _W, "-T": _R, "--upload-file": _R, "-K": _R,
                           "--config": _R, "-c": _W, "--cookie-jar": _W, "-D": _W,
                           "--dump-header": _W, "--cacert": _R, "-E": _R, "--cert": _R,
                           "--key": _R, "-d": (), "--data": (), "--data-binary": (),
                           "--data-raw": (), "--data-urlencode": (), "--data-ascii": (),
                           "--json": (), "-F": (), "--form": (), "--form-string": (),
                           "-H": (), "--header": (), "--proxy-header": (), "-b": (),
                           "--cookie": (), "--netrc-file": _R},
                  at_files=True),
    "wget": Roles(values=frozenset({"--header", "-U", "--user-agent", "--user", "--password",
                                    "-e", "--execute", "-t", "--tries", "-T", "--timeout",
                                    "--post-data", "--method", "--body-data"}),
                  options={"-O": _W, "--output-document": _W, "-o": _W, "--output-file": _W,
                           "-a": _W, "--append-output": _W, "-i": _R, "--input-file": _R,
                           "--post-file": _R, "--body-file": _R, "-P": _W,
                           "--directory-prefix": _W, "--load-cookies": _R,
                           "--save-cookies": _W}),
    "aria2c": Roles(options={"-o": _W, "--out": _W, "-d": _W, "--dir": _W, "-i": _R,
                             "--input-file": _R}),
    **_same("nc ncat netcat nc.traditional nc.openbsd telnet ping ping6 traceroute "
            "tracepath mtr dig nslookup host whois ftp tftp drill kdig delv", _NET),
    "socat": Roles(),  # its addresses have a syntax of their own (rampartd.policy.shell.socat)
    **_same("ssh sftp mosh autossh", Roles(hosts=True, host_first=True,
                                            values=(_SSH_VALUES | {"-i"}) - {"-F"},
                                            options={"-F": _R})),
    "sqlite3": Roles(first=_RW, skip=0, values=frozenset({"-cmd", "-separator"})),
    **_same("python python2 python3 perl ruby node php lua Rscript bun deno tsx ts-node",
            Roles(first=_R, values=frozenset({"-W", "-X", "-m", "-c", "-e", "-E", "-r", "-p",
                                              "-I", "-M", "--eval", "--print", "--require"}))),
    **_same("sh bash zsh dash ksh ash mksh rbash fish csh tcsh", Roles(first=_R, values=frozenset(
        {"-o", "-O", "+o", "+O", "--rcfile", "--init-file"}))),
}

_TAR_VALUE_LETTERS = frozenset("fCbHKLNTVX")


def _tar(args: Sequence[str]) -> list[Target]:
    """tar: `-c` reads the operands and writes the archive; `-x` the reverse (into -C or .)."""
    create = extract = remove = absolute = False
    archive: int | None = None
    directory: int | None = None
    files_from: list[int] = []
    operands: list[int] = []
    j = 0
    first = True
    while j < len(args):
        t = args[j]
        idx = j + 1  # argv index
        if t == "--":
            operands += range(j + 2, len(args) + 1)
            break
        if t.startswith("--"):
            name, eq, _value = t.partition("=")
            create |= name in ("--create", "--append", "--update")
            extract |= name in ("--extract", "--get")
            remove |= name == "--remove-files"
            absolute |= name == "--absolute-names"
            if name in ("--file", "--directory", "--files-from", "-T") and not eq:
                j += 1
                if name == "--file":
                    archive = j + 1
                elif name == "--directory":
                    directory = j + 1
                else:
                    files_from.append(j + 1)
        elif t.startswith("-") or (first and t and t[0].isalpha() and not t.startswith("/")):
            letters = t.lstrip("-")
            create |= any(c in letters for c in "cru")
            extract |= "x" in letters
            absolute |= "P" in letters
            for c in letters:
                if c in _TAR_VALUE_LETTERS and j + 1 < len(args):
                    j += 1
                    if c == "f":
                        archive = j + 1
                    elif c == "C":
                        directory = j + 1
                    elif c == "T":
                        files_from.append(j + 1)
        else:
            operands.append(idx)
        first = False
        j += 1
    out: list[Target] = [Target(i, _R) for i in files_from]
    if create or not extract:
        if archive is not None:
            out.append(Target(archive, _W if create else _R))
        kinds = ("read", "delete") if remove else _R
        out += [Target(i, kinds, recursive=True) for i in operands]
    else:
        if archive is not None:
            out.append(Target(archive, _R))
        if absolute:
            out.append(Target(0, _W, recursive=True, value="\x00"))  # -P: names as stored
        if directory is not None:
            out.append(Target(directory, _W, recursive=True))
        else:
            out.append(Target(-1, _W, recursive=True))  # -1: the working directory
    return out


def _find(args: Sequence[str]) -> list[Target]:
    """find: its start points are read as trees; `-delete` deletes them; `-fprint` writes."""
    out: list[Target] = []
    starts: list[int] = []
    j = 0
    while (j < len(args) and args[j] in ("-H", "-L", "-P")) or (j < len(args)
                                                               and args[j].startswith("-O")):
        j += 1
    while j < len(args) and not args[j].startswith(("-", "(", "!", ")")):
        starts.append(j + 1)
        j += 1
    kinds: tuple[str, ...] = _R
    if "-delete" in args:
        kinds = ("read", "delete")
    if not starts:
        starts = [-1]
    out += [Target(i, kinds, recursive=True) for i in starts]
    for k, t in enumerate(args):
        if t in ("-fprint", "-fprint0", "-fprintf", "-fls") and k + 1 < len(args):
            out.append(Target(k + 2, _W))
    return out


_GIT_VALUES = frozenset({"-c", "--git-dir", "--work-tree", "--namespace", "--exec-path",
                         "--config-env"})


# options of `git clone` and `git clean` whose value is the next word (no path operand)
GIT_CLONE_VALUES = frozenset({"-b", "--branch", "-o", "--origin", "--depth", "--reference",
                              "--reference-if-able", "-c", "--config", "--template", "-u",
                              "--upload-pack", "--separate-git-dir", "--shallow-since",
                              "--shallow-exclude", "--filter", "-j", "--jobs",
                              "--server-option", "--bundle-uri"})
_GIT_SUB_VALUES = {"clean": frozenset({"-e", "--exclude"}), "clone": GIT_CLONE_VALUES}


def _git(args: Sequence[str]) -> list[Target]:
    """git: `-C DIR` works in (reads) DIR's tree; `clean -f` deletes untracked files below
    its paths or here; `clone URL DIR` writes DIR."""
    out: list[Target] = []
    j = 0
    while j < len(args) and args[j].startswith("-"):
        if args[j] == "-C" and j + 1 < len(args):
            out.append(Target(j + 2, _R, recursive=True))
            j += 2
        else:
            j += 2 if args[j] in _GIT_VALUES else 1
    if j >= len(args):
        return out
    sub, rest = args[j], range(j + 1, len(args))
    values = _GIT_SUB_VALUES.get(sub, _EMPTY)
    operands = [k for k in rest if not args[k].startswith("-")
                and not takes_next(args[k - 1], values)]
    short = "".join(args[k][1:] for k in rest if args[k][:1] == "-" and args[k][1:2] != "-")
    longs = {args[k] for k in rest if args[k].startswith("--")}
    if sub == "clean" and ("f" in short or "--force" in longs) and not (
            "n" in short or "--dry-run" in longs):
        out += [Target(k + 1, _D, recursive=True) for k in operands] or \
            [Target(-1, _D, recursive=True)]
    elif sub == "clone" and len(operands) >= 2:
        out.append(Target(operands[1] + 1, _W, recursive=True))
    return out


def _containers(args: Sequence[str]) -> list[Target]:
    """docker/podman run|create: bind mounts (`-v SRC:DST`, `--mount source=SRC`) expose SRC,
    read and written, to the container."""
    if args[:1] == ["cp"] or args[:2] == ["container", "cp"]:
        skip = 1 if args[0] == "cp" else 2
        return _container_copy(args[skip:], skip)
    if not args or args[0] not in ("run", "create", "container"):
        return []
    out: list[Target] = []
    for j, t in enumerate(args):
        value: str | None = None
        if t in ("-v", "--volume", "--mount") and j + 1 < len(args):
            value, at = args[j + 1], j + 2
        elif t.startswith(("--volume=", "--mount=")):
            value, at = t.split("=", 1)[1], j + 1
        elif t.startswith("-v") and len(t) > 2:
            value, at = t[2:], j + 1
        if value is None:
            continue
        if t.startswith("--mount"):
            fields = dict(f.partition("=")[::2] for f in value.split(","))
            source = fields.get("source") or fields.get("src")
        else:
            source = value.split(":", 1)[0]
        if source and source.startswith(("/", "~", ".", "$")):
            out.append(Target(at, ("read", "write"), recursive=True, value=source))
    return out


def _container_copy(args: Sequence[str], offset: int) -> list[Target]:
    """docker cp SRC DST: a local side (no `CONTAINER:` prefix) is read (SRC) or filled (DST),
    as a whole tree; `-` is stdin or stdout."""
    operands = [j for j, t in enumerate(args) if not t.startswith("-") or t == "-"]
    if len(operands) != 2:
        return []
    out: list[Target] = []
    for j, kinds in zip(operands, (_R, _W), strict=True):
        t = args[j]
        if t != "-" and not _CONTAINER_PATH.match(t):
            out.append(Target(offset + j + 1, kinds, recursive=True))
    return out


_CONTAINER_PATH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*:")


# The shells' history files: `history` and `fc -l` print them (past commands hold tokens).
HISTORY_FILES = ("~/.bash_history", "~/.zsh_history", "~/.zhistory", "~/.sh_history",
                 "~/.local/share/fish/fish_history")


def _history(args: Sequence[str]) -> list[Target]:
    """history / fc: the history files are read (and written when cleared or saved)."""
    kinds = ("read", "write") if any(a[:2] in ("-c", "-d", "-w", "-a") for a in args) else _R
    return [Target(0, kinds, value=name) for name in HISTORY_FILES]


SPECIAL = {"history": _history, "fc": _history, "git": _git, "tar": _tar, "bsdtar": _tar,
           "gtar": _tar, "find": _find, "docker": _containers, "podman": _containers,
           "nerdctl": _containers}


def _has_flag(roles_flags: frozenset[str] | Mapping[str, tuple[str, ...]],
              letters: frozenset[str], t: str) -> str | None:
    """The name in roles_flags that option word t gives (letters: their one-letter names)."""
    if t in roles_flags:
        return t
    if t.startswith("--"):
        name = t.split("=", 1)[0]
        return name if name in roles_flags else None
    if letters and t.startswith("-") and len(t) > 2:
        for c in t[1:]:
            if c in letters:
                return "-" + c
    return None


def roles(argv: Sequence[str]) -> list[Target]:
    """The targets of one command (argv[0] is the program's basename); [] if none known."""
    if not argv:
        return []
    program = argv[0]
    special = SPECIAL.get(program)
    args = argv[1:]
    if special is not None:
        return special(args)
    spec = PROGRAMS.get(program)
    if spec is None:
        return []
    out: list[Target] = []
    operands: list[int] = []
    extra: list[str] = []
    extra_last: list[str] = []
    recursive = spec.always_recursive
    skip = spec.skip
    j = 0
    while j < len(args):
        t = args[j]
        idx = j + 1
        if t == "--":
            operands += range(idx + 1, len(argv))
            break
        if t.startswith("-") and len(t) > 1:
            name, eq, value = t.partition("=")
            cluster = len(t) > 2 and t[1] != "-"  # `-xyz`, not `--name`
            if spec.skip_unless and (name in spec.skip_unless or (
                    cluster and "-" + t[1] in spec.skip_unless)):
                skip = 0
            if name in spec.options:
                kinds = spec.options[name]
                if eq:
                    out.append(_value_target(idx, value, kinds, spec, name))
                elif j + 1 < len(args):
                    j += 1
                    out.append(_value_target(j + 1, args[j], kinds, spec, name))
            elif cluster and t[1] in spec.option_letters:
                # `-ofile`: an option letter with its value attached
                out.append(_value_target(idx, t[2:], spec.options["-" + t[1]], spec,
                                         "-" + t[1]))
            elif name in spec.values:
                if not eq:
                    j += 1
                extra += spec.flags.get(name, ())  # a value option that changes operands too
            else:
                hit = _cluster(t, spec) if cluster and spec.value_letters else None
                if hit is not None:
                    # `-sLo FILE`, `-rn5`: flags, then a letter taking the rest or the next word
                    pos, opt = hit
                    attached = t[pos + 1:]
                    if opt in spec.options:
                        if attached:
                            out.append(_value_target(idx, attached, spec.options[opt], spec, opt))
                        elif j + 1 < len(args):
                            j += 1
                            out.append(_value_target(j + 1, args[j], spec.options[opt], spec,
                                                     opt))
                    elif not attached:
                        j += 1
                    t = t[:pos]
                if spec.recursive and _has_flag(spec.recursive, spec.recursive_letters, t):
                    recursive = True
                if spec.flags:
                    flag = _has_flag(spec.flags, spec.flag_letters, t)
                    if flag is not None:
                        extra += spec.flags[flag]
                if spec.last_flags:
                    flag = _has_flag(spec.last_flags, spec.last_flag_letters, t)
                    if flag is not None:
                        extra_last += spec.last_flags[flag]
            j += 1
            continue
        if spec.keyvals and "=" in t:
            key, _, value = t.partition("=")
            if key in spec.keyvals:
                out.append(Target(idx, spec.keyvals[key], value=value))
            j += 1
            continue
        operands.append(idx)
        j += 1
    operands = operands[skip:]
    if spec.host_first:
        return [*out, Target(operands[0], ("network",))] if operands else out
    operand_kinds = (*spec.args, *extra) if extra else spec.args
    for n, idx in enumerate(operands):
        if spec.last and n == len(operands) - 1 and len(operands) > 1:
            kinds = (*spec.last, *extra_last)
        elif spec.first and n == 0:
            kinds = spec.first
        else:
            kinds = operand_kinds
        if spec.hosts:
            kinds = (*kinds, "host") if kinds else ("network",)
        if kinds:  # (tuple.__new__: the NamedTuple constructor costs twice as much)
            out.append(tuple.__new__(Target, (idx, kinds, recursive, *_TARGET_TAIL)))
    return out


def _cluster(t: str, spec: Roles) -> tuple[int, str] | None:
    """In a cluster of short flags, the first letter that takes a value: (its index, `-X`)."""
    for i in range(1, len(t)):
        c = t[i]
        if not c.isalnum():
            return None
        if c in spec.value_letters:
            return (i, "-" + c) if i > 1 else None  # (a first letter is handled as `-ofile`)
    return None


_AT_FILE = re.compile(r"(?:[A-Za-z0-9_.-]*=)?[@<](.+)")
_NAMED_AT_FILE = re.compile(r"[A-Za-z0-9_.-]*@(.+)")  # --data-urlencode name@file


def _value_target(idx: int, value: str, kinds: tuple[str, ...], spec: Roles,
                  name: str = "") -> Target:
    if spec.at_files and not kinds:
        # curl -d @file, -H @file, -F name=@file / name=<file, --data-urlencode name@file:
        # the file is read and sent; any other value is data, never a target
        m = _AT_FILE.match(value) or (_NAMED_AT_FILE.match(value)
                                      if name == "--data-urlencode" else None)
        if m is not None and m.group(1) != "-":
            return Target(idx, _R, value=m.group(1).split(";", 1)[0])
        return Target(idx, ())
    return Target(idx, kinds, name in spec.tree_options, value=value)


def option_values(argv: Sequence[str]) -> dict[int, str]:
    """argv index → option name, for the words that are a table option's separate value
    (`curl -d DATA`, `-o FILE`): they are no operands, whatever they look like."""
    spec = PROGRAMS.get(argv[0]) if argv else None
    out: dict[int, str] = {}
    if spec is None:
        return out
    for j in range(1, len(argv) - 1):
        t = argv[j]
        if t == "--":
            break
        if not t.startswith("-") or "=" in t or j in out:
            continue
        if t in spec.values or t in spec.options:
            out[j + 1] = t
        elif not t.startswith("--") and len(t) > 2 and (hit := _cluster(t, spec)) is not None \
                and hit[0] == len(t) - 1:
            out[j + 1] = hit[1]  # `-sLo FILE`
    return out
