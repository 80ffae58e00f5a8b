"""Python inline code through the stdlib `ast`: calls resolved through imports and aliases,
arguments folded from literals, f-strings, joins, the home directory and simple variables.
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
from rampartd.policy.inline.findings import HOME, UNKNOWN, UNKNOWN_VALUE, Collector, Value
from rampartd.policy.inline.fold import HOME_NAMES, MAX_VALUE, Folder

MAX_NODES = 20_000
MAX_FOLD_DEPTH = 40

Analyze = Callable[[str, str, Collector, int], None]

_SHELL = frozenset({"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                    "commands.getoutput", "asyncio.create_subprocess_shell", "os.popen2",
                    "os.popen3", "platform.popen"})
_SUBPROCESS = frozenset({"subprocess.run", "subprocess.call", "subprocess.check_call",
                         "subprocess.check_output", "subprocess.Popen"})
_READS = frozenset({"os.listdir", "os.scandir", "os.walk", "glob.glob", "glob.iglob", "os.stat",
                    "os.lstat", "os.readlink", "linecache.getline", "linecache.getlines",
                    "fileinput.input", "runpy.run_path", "numpy.load", "numpy.loadtxt",
                    "pandas.read_csv", "pandas.read_json", "pandas.read_excel",
                    "pandas.read_parquet", "pandas.read_table", "imp.load_source",
                    "os.path.getsize", "configparser.ConfigParser.read"})
_WRITES = frozenset({"os.mkdir", "os.makedirs", "os.mkfifo", "os.mknod", "os.truncate",
                     "os.utime", "sqlite3.connect", "shelve.open", "dbm.open", "tempfile.mkdtemp"})
_DELETES = frozenset({"os.remove", "os.unlink", "os.rmdir", "os.removedirs", "shutil.rmtree"})
_CHMODS = frozenset({"os.chmod", "os.lchmod", "os.chown", "os.lchown", "shutil.chown",
                     "os.chflags", "os.lchflags"})
_COPIES = frozenset({"shutil.copy", "shutil.copy2", "shutil.copyfile", "shutil.copytree",
                     "shutil.copymode", "shutil.copystat"})
_MOVES = frozenset({"shutil.move", "os.rename", "os.replace", "os.renames"})
_LINKS = frozenset({"os.symlink", "os.link"})
_URLS = frozenset({"urllib.request.urlopen", "urllib.urlopen", "urllib2.urlopen",
                   "urllib.request.Request", "requests.get", "requests.post", "requests.put",
                   "requests.patch", "requests.delete", "requests.head", "httpx.get", "httpx.post",
                   "httpx.put", "httpx.stream", "webbrowser.open", "urllib.request.urlretrieve",
                   "aiohttp.request", "httpx.Client.get", "requests.Session.get"})
_HOSTS = {"http.client.HTTPConnection": "http", "http.client.HTTPSConnection": "https",
          "httplib.HTTPConnection": "http", "httplib.HTTPSConnection": "https",
          "ftplib.FTP": "ftp", "ftplib.FTP_TLS": "ftp", "smtplib.SMTP": "smtp",
          "smtplib.SMTP_SSL": "smtps", "telnetlib.Telnet": "telnet", "poplib.POP3": "pop3",
          "imaplib.IMAP4": "imap", "imaplib.IMAP4_SSL": "imaps"}
_SOCKETS = frozenset({"socket.socket", "socket.create_connection", "asyncio.open_connection",
                      "telnetlib.Telnet", "ssl.wrap_socket", "socket.fromfd",
                      "asyncio.open_unix_connection"})
_FETCH_MODULES = ("urllib", "urllib2", "urllib3", "requests", "httpx", "http.client", "aiohttp",
                  "httplib", "ftplib", "socket", "pycurl")
_EVALS = frozenset({"exec", "eval", "compile", "execfile", "code.InteractiveInterpreter.runsource",
                    "marshal.loads", "types.CodeType", "types.FunctionType"})
_IMPORTS = frozenset({"__import__", "importlib.import_module", "importlib.__import__"})
_NATIVE = ("ctypes", "_ctypes", "cffi")
_PATH_CLASSES = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath",
                           "pathlib.PurePosixPath", "Path", "PosixPath", "PurePath",
                           "zipfile.Path"})
_PATH_METHODS = {"read_text": "read", "read_bytes": "read", "iterdir": "read", "glob": "read",
                 "rglob": "read", "write_text": "write", "write_bytes": "write", "touch": "write",
                 "mkdir": "write", "unlink": "delete", "rmdir": "delete", "chmod": "chmod",
                 "lchmod": "chmod", "symlink_to": "write", "hardlink_to": "write"}
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
_DECODING = frozenset({*_DECODERS, "codecs.decode", "chr", "bytes", "bytearray"})
_MODULE_ALIASES = {"posixpath": "os.path", "posix": "os", "ntpath": "os.path", "builtins": ""}


class PyAnalyzer:
    """One Python module's calls, folded into a Collector."""

    def __init__(self, tree: ast.AST, out: Collector, depth: int, budget: list[int],
                 analyze: Analyze) -> None:
        self.out, self.depth, self.budget, self.analyze_nested = out, depth, budget, analyze
        self.nodes: list[ast.AST] = []
        for node in ast.walk(tree):
            self.nodes.append(node)
            if len(self.nodes) >= MAX_NODES:
                out.too_complex()
                break
        self.aliases: dict[str, str] = {}
        self.assigned: dict[str, ast.expr | None] = {}
        self.parents: dict[int, ast.AST] = {}
        self._memo: dict[str, Value] = {}
        self._resolving: set[str] = set()

    # ---- names ---------------------------------------------------------------------------

    def prepass(self) -> None:
        """Imports, single assignments and parent links."""
        for node in self.nodes:
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[(a.asname or a.name).split(".")[0] if not a.asname else
                                 a.asname] = a.name if a.asname else a.name.split(".")[0]
                    self._module(a.name)
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                self._module(node.module)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self._bind(target.id, node.value)
            elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and \
                    isinstance(node.target, ast.Name) and node.value is not None:
                self._bind(node.target.id, node.value)
            elif isinstance(node, ast.AugAssign | ast.For | ast.With | ast.arguments):
                for name in ast.walk(node.target if isinstance(node, ast.AugAssign | ast.For)
                                     else node):
                    if isinstance(name, ast.Name | ast.arg):
                        self.assigned[name.id if isinstance(name, ast.Name) else name.arg] = None

    def _bind(self, name: str, value: ast.expr) -> None:
        if name in self.assigned and self.assigned[name] is not value:
            self.assigned[name] = None
        else:
            self.assigned[name] = value

    def _module(self, name: str) -> None:
        if name.split(".")[0] in _NATIVE:
            self.out.flag(F.NATIVE)
        if name.startswith(_FETCH_MODULES):
            self.out.fetches = True

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
            first, _, rest = name.partition(".")
            if first in _MODULE_ALIASES:
                name = _MODULE_ALIASES[first] + ("." + rest if rest else "")
                name = name.lstrip(".")
            return name
        if isinstance(node, ast.Attribute):
            base = self.qualname(node.value, depth + 1)
            return f"{base}.{node.attr}" if base is not None else None
        if isinstance(node, ast.Call):
            callee = self.qualname(node.func, depth + 1)
            if callee in _IMPORTS and node.args:
                mod = self.fold(node.args[0])
                return mod.text if mod.known else None
            if callee == "getattr" and len(node.args) >= 2:
                base = self.qualname(node.args[0], depth + 1)
                attr = self.fold(node.args[1])
                if base is not None and attr.known:
                    return f"{base}.{attr.text}"
                return None
            if callee in _PATH_CLASSES:
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
        if q in ("os.path.join", "os.path.joinpath") or q in _PATH_CLASSES:
            return F.join_path([self.fold(a, d) for a in args]) if args else Value(".")
        if q in ("os.getenv", "os.environ.get", "os.getenvb"):
            return HOME if first.known and first.text in HOME_NAMES else UNKNOWN_VALUE
        if q == "os.path.expanduser" or q in _IDENTITY:
            return first
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

    # ---- sinks ---------------------------------------------------------------------------

    def _arg(self, node: ast.Call, index: int, *names: str) -> ast.expr | None:
        for kw in node.keywords:
            if kw.arg in names:
                return kw.value
        if index < len(node.args) and not any(isinstance(a, ast.Starred)
                                              for a in node.args[:index + 1]):
            return node.args[index]
        return None

    def _path_arg(self, kind: str, node: ast.AST | None) -> None:
        if node is None:
            self.out.unknown = True
            return
        words = self._words(node) if isinstance(node, ast.List | ast.Tuple) else None
        for v in words if words is not None else [self.fold(node)]:
            self.out.path(kind, v)

    def _command(self, node: ast.AST | None, executable: ast.AST | None = None) -> None:
        words = self._words(node)
        if words is not None:
            if executable is not None and words:
                words[0] = self.fold(executable)
            self.out.argv(list(words))
        else:
            self.out.command(self.fold(node) if node is not None else None)

    def call(self, node: ast.Call) -> None:
        """Effects of one call."""
        out = self.out
        q = self.qualname(node.func) or ""
        if q.startswith(_FETCH_MODULES):
            out.fetches = True
        if not self._sink(node, q) and isinstance(node.func, ast.Attribute):
            self._path_method(node, q)
        if q in _SOCKETS:
            out.flag(F.SOCKET)
            out.fetches = True
            target = self._arg(node, 0, "address", "host")
            words = self._words(target) if isinstance(target, ast.Tuple) else None
            if words and len(words) == 2 and words[0].known:
                out.url(Value(f"tcp://{words[0].text}:{words[1].text}"))

    def _sink(self, node: ast.Call, q: str) -> bool:
        """Effects of a call to a known function; False when q is none of them."""
        out = self.out
        if q in _SHELL:
            self._command(self._arg(node, 0, "cmd", "command"))
        elif q in _SUBPROCESS:
            self._command(self._arg(node, 0, "args"), self._arg(node, 99, "executable"))
        elif q == "pty.spawn":
            self._command(self._arg(node, 0, "argv"))
        elif q == "asyncio.create_subprocess_exec" or q.startswith(("os.exec", "os.spawn",
                                                                     "os.posix_spawn")):
            self._exec_family(q, node)
        elif q in ("open", "io.open", "codecs.open", "tokenize.open", "gzip.open", "bz2.open",
                   "lzma.open", "tarfile.open", "zipfile.ZipFile", "os.open"):
            self._open(node, q)
        elif q in _READS:
            self._path_arg("read", self._arg(node, 0, "path", "top", "pathname", "filename"))
        elif q in _WRITES:
            self._path_arg("write", self._arg(node, 0, "path", "name", "database"))
        elif q in _DELETES:
            self._path_arg("delete", self._arg(node, 0, "path"))
        elif q in _CHMODS:
            self._path_arg("chmod", self._arg(node, 0, "path"))
        elif q in _COPIES or q in _MOVES:
            src, dst = self._arg(node, 0, "src"), self._arg(node, 1, "dst")
            self._path_arg("read", src)
            if q in _MOVES:
                self._path_arg("delete", src)
            self._path_arg("write", dst)
        elif q in _LINKS:
            self._path_arg("write", self._arg(node, 1, "dst"))
        elif q in _URLS:
            out.url(self.fold(self._arg(node, 0, "url")))
            if q == "urllib.request.urlretrieve" and len(node.args) > 1:
                self._path_arg("write", node.args[1])
        elif q in _HOSTS:
            host = self.fold(self._arg(node, 0, "host"))
            out.url(Value(f"{_HOSTS[q]}://{host.text}", host.obfuscated) if host.known else host)
        elif q in _EVALS:
            self._eval(q, node)
        elif q in _IMPORTS:
            mod = self.fold(self._arg(node, 0, "name"))
            if mod.obfuscated:
                out.flag(F.BUILDS_NAME)
            if mod.known:
                self._module(mod.text)
            else:
                out.flag(F.EVALUATES)
                out.unknown = True
        elif q == "getattr" and len(node.args) >= 2:
            attr = self.fold(node.args[1])
            if attr.obfuscated:
                out.flag(F.BUILDS_NAME)
            base = self.qualname(node.args[0]) or ""
            if not attr.known and base.split(".")[0] in ("os", "subprocess", "shutil", "pty",
                                                         "builtins", "posix"):
                out.unknown = True
        elif q.startswith(_NATIVE):
            out.flag(F.NATIVE)
        else:
            # a module's own function; a method of what a call returned (`pathlib.Path.home()
            # .read_text()`) is judged by the method
            return "()" not in q and q.split(".")[0] in self.aliases.values()
        return True

    def _exec_family(self, q: str, node: ast.Call) -> None:
        args = node.args
        if q == "asyncio.create_subprocess_exec":
            self.out.argv([self.fold(a) for a in args])
            return
        offset = 1 if q.startswith("os.spawn") else 0
        path = self.fold(args[offset]) if len(args) > offset else UNKNOWN_VALUE
        rest = args[offset + 1:]
        if q.endswith(("e", "pe")) and rest and "l" in q.rsplit(".", 1)[1]:
            rest = rest[:-1]  # execle/spawnle: the environment comes last
        if "l" in q.rsplit(".", 1)[1][4:]:
            words: list[Value] | None = [self.fold(a) for a in rest[1:]]
        else:
            vector = self._words(rest[0]) if rest else None
            words = vector[1:] if vector is not None else None
        self.out.argv([path, *(words if words is not None else [UNKNOWN_VALUE])])

    def _open(self, node: ast.Call, q: str) -> None:
        target = self._arg(node, 0, "file", "name", "filename", "path")
        if q == "os.open":
            flags = self._arg(node, 1, "flags")
            names = {n.attr for n in ast.walk(flags)
                     if isinstance(n, ast.Attribute)} if flags is not None else set()
            write = bool(names & {"O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"})
            self._path_arg("write" if write else "read", target)
            return
        mode_node = self._arg(node, 1, "mode")
        mode = self.fold(mode_node).text if mode_node is not None else "r"
        if q == "zipfile.ZipFile" and mode_node is None:
            mode = "r"
        if any(c in mode for c in "wax+") or UNKNOWN in mode:
            if "+" in mode:
                self._path_arg("read", target)
            self._path_arg("write", target)
        else:
            self._path_arg("read", target)

    def _path_method(self, node: ast.Call, q: str) -> None:
        assert isinstance(node.func, ast.Attribute)
        attr, recv = node.func.attr, node.func.value
        is_path = q.startswith("pathlib.Path().") or self._is_path_expr(recv)
        kind = _PATH_METHODS.get(attr)
        if attr == "open" and is_path:
            mode_node = self._arg(node, 0, "mode")
            mode = self.fold(mode_node).text if mode_node is not None else "r"
            kind = "write" if any(c in mode for c in "wax+") else "read"
        if attr in ("rename", "replace") and is_path:
            self._path_arg("read", recv)
            self._path_arg("delete", recv)
            self._path_arg("write", self._arg(node, 0, "target"))
            return
        if kind is None or (not is_path and attr in ("glob", "mkdir", "open", "touch")):
            return
        self.out.path(kind, self.fold(recv) if is_path else None)

    def _is_path_expr(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Call):
            q = self.qualname(node.func) or ""
            if q in _PATH_CLASSES or q.endswith((".home", ".expanduser", ".resolve",
                                                 ".joinpath", ".absolute")):
                return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self._is_path_expr(node.left)
        if isinstance(node, ast.Name) and node.id not in self._resolving:
            value = self.assigned.get(node.id)
            if value is not None:
                self._resolving.add(node.id)
                try:
                    return self._is_path_expr(value)
                finally:
                    self._resolving.discard(node.id)
        return False

    def _eval(self, q: str, node: ast.Call) -> None:
        out = self.out
        source = self._arg(node, 0, "source", "object")
        v = self.fold(source) if source is not None else UNKNOWN_VALUE
        literal = isinstance(source, ast.Constant)
        if v.known and q in ("exec", "eval", "compile") and self.depth >= F.MAX_DEPTH:
            out.too_complex()
            return
        if v.known and q in ("exec", "eval", "compile"):
            if not literal:
                out.flag(F.EVALUATES)
            if v.obfuscated:
                out.flag(F.BUILDS_NAME)
            self.analyze_nested("python", v.text, out, self.depth + 1)
            return
        if q == "execfile" and v.known:
            out.path("read", v)
        out.flag(F.EVALUATES)
        out.executes_computed = True
        out.unknown = True

    def run(self) -> None:
        """Analyse every call and string of the module."""
        self.prepass()
        for node in self.nodes:
            self.budget[0] -= 1
            if self.budget[0] <= 0:
                self.out.too_complex()
                return
            if isinstance(node, ast.Call):
                self.call(node)
            elif isinstance(node, ast.Constant | ast.JoinedStr | ast.BinOp):
                parent = self.parents.get(id(node))
                if isinstance(parent, ast.Call) and node in parent.args and \
                        self.qualname(parent.func) in _DECODING:
                    continue  # encoded text: what it decodes to is what the sinks see
                if isinstance(parent, ast.JoinedStr | ast.FormattedValue | ast.Attribute) or (
                        isinstance(parent, ast.BinOp) and isinstance(parent.op, ast.Add | ast.Mod
                                                                     | ast.Div)) or (
                        isinstance(parent, ast.Subscript) and parent.value is node):
                    continue  # a piece of a longer string: the sinks fold the whole
                if isinstance(node, ast.BinOp) and not isinstance(node.op, ast.Add | ast.Div):
                    continue
                if isinstance(node, ast.Constant) and not isinstance(node.value, str):
                    continue
                v = self.fold(node)
                if v.known and v.text:
                    self.out.literal(v.text)


def analyze_python(code: str, out: Collector, depth: int, budget: list[int],
                   analyze: Analyze) -> bool:
    """Analyse Python code into out; False when it does not parse."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, RecursionError, ValueError, MemoryError, OverflowError):
        return False
    try:
        PyAnalyzer(tree, out, depth, budget, analyze).run()
    except RecursionError:
        out.too_complex()
    return True
