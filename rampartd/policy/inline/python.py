"""Python inline code through the stdlib `ast`: calls resolved through imports and aliases,
arguments folded from literals, f-strings, joins, the home directory and simple variables.
"""

from __future__ import annotations

import ast
import warnings

from rampartd.policy.inline import findings as F
from rampartd.policy.inline.findings import UNKNOWN, UNKNOWN_VALUE, Analyze, Collector, Value
from rampartd.policy.inline.pyfold import DECODING, IMPORTS, PATH_CLASSES, PyFolder

MAX_NODES = 20_000

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
_NATIVE = ("ctypes", "_ctypes", "cffi")
_PATH_METHODS = {"read_text": "read", "read_bytes": "read", "iterdir": "read", "glob": "read",
                 "rglob": "read", "write_text": "write", "write_bytes": "write", "touch": "write",
                 "mkdir": "write", "unlink": "delete", "rmdir": "delete", "chmod": "chmod",
                 "lchmod": "chmod", "symlink_to": "write", "hardlink_to": "write"}


class PyAnalyzer(PyFolder):
    """One Python module's calls, folded into a Collector."""

    def __init__(self, tree: ast.AST, out: Collector, depth: int, budget: list[int],
                 analyze: Analyze) -> None:
        super().__init__(budget)
        self.out, self.depth, self.analyze_nested = out, depth, analyze
        self.nodes: list[ast.AST] = []
        for node in ast.walk(tree):
            self.nodes.append(node)
            if len(self.nodes) >= MAX_NODES:
                out.too_complex()
                break
        self.parents: dict[int, ast.AST] = {}

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
                    if a.name == "*":
                        self.star_modules.append(node.module)
                    else:
                        self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                self._module(node.module)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self._bind(target.id, node.value)
                    else:
                        self._unbind(target)
            elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and \
                    isinstance(node.target, ast.Name) and node.value is not None:
                self._bind(node.target.id, node.value)
            elif isinstance(node, ast.AugAssign | ast.For | ast.AsyncFor | ast.comprehension):
                self._unbind(node.target)
            elif isinstance(node, ast.With | ast.AsyncWith):
                for item in node.items:
                    if item.optional_vars is not None:
                        self._unbind(item.optional_vars)
            elif isinstance(node, ast.arguments):
                for arg in (*node.posonlyargs, *node.args, *node.kwonlyargs, node.vararg,
                            node.kwarg):
                    if arg is not None:
                        self.assigned[arg.arg] = None
            elif isinstance(node, ast.ExceptHandler) and node.name:
                self.assigned[node.name] = None

    def _unbind(self, target: ast.AST) -> None:
        """Names bound by loops, unpacking and `with … as`: no one known value."""
        for name in ast.walk(target):
            if isinstance(name, ast.Name):
                self.assigned[name.id] = None

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
            args = self._arg(node, 0, "args")
            shell = self._arg(node, 99, "shell")
            if isinstance(shell, ast.Constant) and shell.value and \
                    isinstance(args, ast.List | ast.Tuple) and args.elts:
                args = args.elts[0]  # with shell=True the first item is the command line
            self._command(args, self._arg(node, 99, "executable"))
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
        elif q in IMPORTS:
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
            if attr.obfuscated or not isinstance(node.args[1], ast.Constant):
                out.flag(F.BUILDS_NAME)  # getattr(os, 'sys' + 'tem'): a name in pieces
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
            if "+" in mode or UNKNOWN in mode:
                self._path_arg("read", target)
            self._path_arg("write", target)
        else:
            self._path_arg("read", target)

    def _path_method(self, node: ast.Call, q: str) -> None:
        assert isinstance(node.func, ast.Attribute)
        attr, recv = node.func.attr, node.func.value
        if attr in ("connect", "connect_ex", "sendto") and node.args and \
                isinstance(node.args[-1], ast.Tuple) and len(node.args[-1].elts) == 2:
            host, port = (self.fold(e) for e in node.args[-1].elts)  # a socket's (host, port)
            self.out.flag(F.SOCKET)
            self.out.url(Value(f"tcp://{host.text}:{port.text}") if host.known and port.known
                         else UNKNOWN_VALUE)
            return
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
            if q in PATH_CLASSES or q.endswith((".home", ".expanduser", ".resolve",
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
        if v.obfuscated:
            out.flag(F.BUILDS_NAME)
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
                        self.qualname(parent.func) in DECODING:
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings about the agent's code are noise
            tree = ast.parse(code)
    except (SyntaxError, RecursionError, ValueError, MemoryError, OverflowError):
        return False
    try:
        PyAnalyzer(tree, out, depth, budget, analyze).run()
    except RecursionError:
        out.too_complex()
    return True
