"""Folding Python expressions (ast) into string Values: literals, f-strings, `+`, `%` and
`.format`, os.path.join and Path, the home directory from the environment, and the decodings
that build a name from pieces. Callee names are resolved through imports and aliases.
"""

from __future__ import annotations

import ast
import base64
import binascii
import codecs
import posixpath
import shlex
from collections.abc import Callable

from rampartd.policy.inline import findings as F
from rampartd.policy.inline.findings import HOME, UNKNOWN, UNKNOWN_VALUE, Value
from rampartd.policy.inline.fold import MAX_VALUE, Folder
from rampartd.policy.inline.tables import HOME_NAMES

MAX_FOLD_DEPTH = 40

IMPORTS = frozenset({"__import__", "importlib.import_module", "importlib.__import__"})
PATH_CLASSES = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath",
                           "pathlib.PurePosixPath", "Path", "PosixPath", "PurePath",
                           "zipfile.Path"})
_IDENTITY = frozenset({"str", "os.fspath", "os.fsdecode", "os.path.abspath", "os.path.realpath",
                       "os.path.normpath", "os.path.expandvars", "os.fsencode", "bytes.decode",
                       "str.strip"})
_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "base64.b64decode": base64.b64decode, "base64.urlsafe_b64decode": base64.urlsafe_b64decode,
    "base64.b32decode": base64.b32decode, "base64.b16decode": base64.b16decode,
    "base64.b85decode": base64.b85decode, "base64.a85decode": base64.a85decode,
    "base64.decodebytes": base64.decodebytes, "binascii.unhexlify": binascii.unhexlify,
    "binascii.a2b_hex": binascii.a2b_hex, "binascii.a2b_base64": binascii.a2b_base64,
    "bytes.fromhex": lambda b: bytes.fromhex(b.decode("latin-1")),
    "bytearray.fromhex": lambda b: bytes.fromhex(b.decode("latin-1")),
}
_STR_METHODS: dict[str, Callable[[str], str]] = {
    "lower": str.lower, "upper": str.upper, "strip": str.strip, "rstrip": str.rstrip,
    "lstrip": str.lstrip}
DECODING = frozenset({*_DECODERS, "codecs.decode", "chr", "bytes", "bytearray"})
_MODULE_ALIASES = {"posixpath": "os.path", "posix": "os", "ntpath": "os.path", "builtins": "",
                   "__builtins__": "", "__builtin__": ""}
# Decoders whose output cannot be folded here: what they build is hidden on purpose.
_OPAQUE_DECODERS = frozenset({"zlib.decompress", "gzip.decompress", "bz2.decompress",
                              "lzma.decompress", "marshal.loads", "pickle.loads"})
# Names a star import may bring in that matter to the analysis.
STAR_NAMES = frozenset({"os.system", "os.popen", "os.remove", "os.unlink", "os.rmdir",
                        "os.chmod", "os.rename", "os.execv", "os.execvp", "os.execl",
                        "os.execlp", "subprocess.run", "subprocess.call", "subprocess.Popen",
                        "subprocess.check_output", "subprocess.check_call",
                        "subprocess.getoutput", "shutil.rmtree", "shutil.copy", "shutil.move",
                        "pty.spawn", "ctypes.CDLL", "socket.socket", "os.environ",
                        "os.getenv", "pathlib.Path", "urllib.request.urlopen"})


class PyFolder:
    """Names and values of one Python module."""

    def __init__(self, budget: list[int]) -> None:
        self.budget = budget
        self.aliases: dict[str, str] = {}
        self.assigned: dict[str, ast.expr | None] = {}
        self._memo: dict[str, Value] = {}
        self._resolving: set[str] = set()
        self.star_modules: list[str] = []  # `from os import *`

    def qualname(self, node: ast.AST, depth: int = 0) -> str | None:
        """The dotted name a callee resolves to (`sp.run` → `subprocess.run`), or None."""
        if depth > 12:
            return None
        if isinstance(node, ast.Name):
            if node.id in self.aliases:
                name = self.aliases[node.id]
            else:
                value = self.assigned.get(node.id)
                if isinstance(value, ast.Name | ast.Attribute | ast.Call) and \
                        node.id not in self._resolving:
                    self._resolving.add(node.id)
                    try:
                        resolved = self.qualname(value, depth + 1)
                    finally:
                        self._resolving.discard(node.id)
                    if resolved is not None and not resolved.endswith("()"):
                        return resolved
                name = node.id
                for module in self.star_modules:
                    if f"{module}.{name}" in STAR_NAMES:
                        name = f"{module}.{name}"
            first, _, rest = name.partition(".")
            if first in _MODULE_ALIASES:
                name = _MODULE_ALIASES[first] + ("." + rest if rest else "")
                name = name.lstrip(".")
            return name
        if isinstance(node, ast.Subscript) and self.qualname(node.value, depth + 1) == \
                "sys.modules":
            key = self.fold(node.slice)
            return key.text if key.known else None
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value, depth + 1)
            return f"{base}.{node.attr}" if base is not None else None
        if isinstance(node, ast.Call):
            callee = self.qualname(node.func, depth + 1)
            if callee in IMPORTS and node.args:
                mod = self.fold(node.args[0])
                return mod.text if mod.known else None
            if callee == "getattr" and len(node.args) >= 2:
                base = self.qualname(node.args[0], depth + 1)
                attr = self.fold(node.args[1])
                if base is not None and attr.known:
                    return f"{base}.{attr.text}"
                return None
            if callee in PATH_CLASSES:
                return "pathlib.Path()"
            return f"{callee}()" if callee else None
        return None

    # ---- values --------------------------------------------------------------------------

    def fold(self, node: ast.AST | None, depth: int = 0) -> Value:
        """The string Value of an expression (UNKNOWN parts where it depends on run time)."""
        self.budget[0] -= 1
        if node is None or depth > MAX_FOLD_DEPTH or self.budget[0] <= 0:
            return UNKNOWN_VALUE
        v = self._fold(node, depth + 1)
        self.budget[0] -= len(v.text) // 256  # long values cost their length
        if len(v.text) > MAX_VALUE:
            return Value(v.text[:MAX_VALUE] + UNKNOWN, v.obfuscated)
        return v

    def _fold(self, node: ast.AST, d: int) -> Value:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return Value(node.value)
            if isinstance(node.value, bytes):
                return Value(node.value.decode("latin-1"))
            if isinstance(node.value, int | float) and not isinstance(node.value, bool):
                return Value(str(node.value))
            return UNKNOWN_VALUE
        if isinstance(node, ast.JoinedStr):
            return F.concat([self.fold(v.value if isinstance(v, ast.FormattedValue) else v, d)
                             for v in node.values])
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Add):
                return self.fold(node.left, d) + self.fold(node.right, d)
            if isinstance(node.op, ast.Div):
                return F.join_path([self.fold(node.left, d), self.fold(node.right, d)])
            if isinstance(node.op, ast.Mod):
                right = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
                return Folder.format(self.fold(node.left, d), [self.fold(r, d) for r in right])
            return UNKNOWN_VALUE
        if isinstance(node, ast.Name):
            return self._var(node.id, d)
        if isinstance(node, ast.Subscript):
            return self._subscript(node, d)
        if isinstance(node, ast.Attribute):
            q = self.qualname(node)
            if q in ("os.sep", "os.path.sep"):
                return Value("/")
            if node.attr == "parent":
                base = self.fold(node.value, d)
                return Value(posixpath.dirname(base.text), base.obfuscated) if base.known \
                    else UNKNOWN_VALUE
            return UNKNOWN_VALUE
        if isinstance(node, ast.Call):
            return self._call_value(node, d)
        return UNKNOWN_VALUE

    def _var(self, name: str, d: int) -> Value:
        if name in self._memo:
            return self._memo[name]
        value = self.assigned.get(name)
        if value is None or name in self._resolving:
            return UNKNOWN_VALUE
        self._resolving.add(name)
        try:
            result = self.fold(value, d)
        finally:
            self._resolving.discard(name)
        self._memo[name] = result
        return result

    def _subscript(self, node: ast.Subscript, d: int) -> Value:
        q = self.qualname(node.value)
        if q in ("os.environ", "os.environb"):
            key = self.fold(node.slice, d)
            return HOME if key.known and key.text in HOME_NAMES else UNKNOWN_VALUE
        s = node.slice
        if isinstance(s, ast.Slice) and s.lower is None and s.upper is None and \
                isinstance(s.step, ast.UnaryOp) and isinstance(s.step.op, ast.USub):
            base = self.fold(node.value, d)
            return Value(base.text[::-1] if base.known else UNKNOWN, obfuscated=True)
        return UNKNOWN_VALUE

    def _words(self, node: ast.AST | None, d: int = 0) -> list[Value] | None:
        """The elements of a list/tuple argument vector, or None if it is not one."""
        if isinstance(node, ast.List | ast.Tuple):
            out: list[Value] = []
            for e in node.elts:
                if isinstance(e, ast.Starred):
                    out.append(UNKNOWN_VALUE)
                else:
                    out.append(self.fold(e, d))
            return out
        if isinstance(node, ast.Name) and node.id not in self._resolving:
            value = self.assigned.get(node.id)
            if isinstance(value, ast.List | ast.Tuple | ast.Call):
                self._resolving.add(node.id)
                try:
                    return self._words(value, d + 1)
                finally:
                    self._resolving.discard(node.id)
        if isinstance(node, ast.Call):
            q = self.qualname(node.func)
            source: ast.expr | None = None
            if q == "shlex.split" and node.args:
                source = node.args[0]
            elif isinstance(node.func, ast.Attribute) and node.func.attr == "split" and \
                    not node.args:
                source = node.func.value
            if source is not None:
                v = self.fold(source, d)
                if v.known:
                    try:
                        return [Value(w, v.obfuscated) for w in shlex.split(v.text)]
                    except ValueError:
                        return None
        return None

    def _call_value(self, node: ast.Call, d: int) -> Value:
        q = self.qualname(node.func) or ""
        args = node.args
        first = self.fold(args[0], d) if args else UNKNOWN_VALUE
        if q in ("os.path.join", "os.path.joinpath") or q in PATH_CLASSES:
            return F.join_path([self.fold(a, d) for a in args]) if args else Value(".")
        if q in ("os.getenv", "os.environ.get", "os.getenvb"):
            return HOME if first.known and first.text in HOME_NAMES else UNKNOWN_VALUE
        if q == "os.path.expanduser" or q in _IDENTITY:
            return first
        if q in ("shlex.quote", "pipes.quote"):
            return Value(F.shell_quote(first.text), first.obfuscated) if first.known else first
        if q == "shlex.join" and args:
            words = self._words(args[0], d)
            return Value(" ".join(F.shell_quote(w.text) if w.known else UNKNOWN
                                  for w in words)) if words is not None else UNKNOWN_VALUE
        if q in ("pathlib.Path.home", "Path.home", "os.path.expanduser"):
            return HOME
        if q in ("os.path.dirname", "os.path.basename"):
            fn = posixpath.dirname if q.endswith("dirname") else posixpath.basename
            return Value(fn(first.text), first.obfuscated) if first.known else UNKNOWN_VALUE
        if q == "chr":
            n = args[0].value if args and isinstance(args[0], ast.Constant) else None
            if isinstance(n, int) and 0 <= n < 0x110000:
                return Value(chr(n), obfuscated=True)
            return Value(UNKNOWN, obfuscated=True)
        if q in _OPAQUE_DECODERS:
            return Value(UNKNOWN, obfuscated=True)
        if q in _DECODERS or q == "codecs.decode":
            return self._decoded(q, node, first)
        if q in ("bytes", "bytearray") and args:
            words = self._words(args[0], d)
            if words is not None:
                try:
                    return Value("".join(chr(int(w.text)) for w in words), obfuscated=True)
                except (ValueError, OverflowError):
                    pass
            return Value(first.text, True) if first.known else Value(UNKNOWN, obfuscated=True)
        if isinstance(node.func, ast.Attribute):
            return self._method_value(node, d)
        return UNKNOWN_VALUE

    def _decoded(self, q: str, node: ast.Call, first: Value) -> Value:
        if q == "codecs.decode":
            enc = self.fold(node.args[1]).text if len(node.args) > 1 else "utf-8"
            if first.known and enc.replace("_", "").lower() in ("rot13", "rot_13"):
                return Value(codecs.decode(first.text, "rot13"), obfuscated=True)
            if first.known and enc in ("hex", "base64"):
                q = "binascii.unhexlify" if enc == "hex" else "base64.b64decode"
            else:
                return Value(UNKNOWN, obfuscated=True)
        if first.known:
            try:
                raw = _DECODERS[q](first.text.encode("latin-1"))
                return Value(raw.decode("utf-8", "replace"), obfuscated=True)
            except (ValueError, binascii.Error, UnicodeError, TypeError):
                pass
        return Value(UNKNOWN, obfuscated=True)

    def _method_value(self, node: ast.Call, d: int) -> Value:
        assert isinstance(node.func, ast.Attribute)
        attr, recv = node.func.attr, node.func.value
        if attr == "join":
            sep = self.fold(recv, d)
            words = self._words(node.args[0], d) if node.args else None
            if words is None:
                is_chr = node.args and any(isinstance(n, ast.Name) and n.id in ("chr", "reversed")
                                           for n in ast.walk(node.args[0]))
                return Value(UNKNOWN, obfuscated=bool(is_chr) or sep.text == "")
            return Value(sep.text.join(w.text for w in words),
                         (sep.text == "" and len(words) > 1) or any(w.obfuscated for w in words))
        if attr in ("joinpath",):
            return F.join_path([self.fold(recv, d), *(self.fold(a, d) for a in node.args)])
        if attr in ("expanduser", "resolve", "absolute", "strip", "decode", "encode", "lower",
                    "upper", "rstrip", "lstrip", "as_posix"):
            base = self.fold(recv, d)
            if not base.known:
                return base
            fn = _STR_METHODS.get(attr)
            return Value(fn(base.text) if fn and not node.args else base.text, base.obfuscated)
        if attr == "home":
            return HOME
        if attr == "format":
            template = self.fold(recv, d)
            return Folder.format(template, [self.fold(a, d) for a in node.args])
        if attr == "replace" and len(node.args) == 2:
            base, old, new = (self.fold(recv, d), self.fold(node.args[0], d),
                              self.fold(node.args[1], d))
            if base.known and old.known and new.known and old.text:
                return Value(base.text.replace(old.text, new.text), base.obfuscated)
        if attr == "get" and self.qualname(recv) == "os.environ" and node.args:
            key = self.fold(node.args[0], d)
            return HOME if key.known and key.text in HOME_NAMES else UNKNOWN_VALUE
        return UNKNOWN_VALUE
