"""Folding token runs of non-Python code into string Values: literals, interpolations,
concatenation, path joins, the home directory from the environment, and the decodings that
build a name from pieces (which mark the Value as obfuscated).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable

from rampartd.policy.inline.findings import (
    HOME,
    UNKNOWN,
    UNKNOWN_VALUE,
    Value,
    concat,
    join_path,
    shell_quote,
)
from rampartd.policy.inline.lexer import Token, tokenize
from rampartd.policy.inline.tables import CONCAT, SEPARATORS

MAX_VALUE = 64 * 1024

HOME_NAMES = frozenset({"HOME", "USERPROFILE"})
ENV_CALLS = frozenset({"getenv", "os.getenv", "Sys.getenv", "ENV.fetch", "os.environ.get",
                       "Deno.env.get", "System.getenv", "posix.getenv"})
ENV_SUBSCRIPTS = frozenset({"process.env", "$ENV", "ENV", "$_SERVER", "$_ENV", "ENVIRON",
                            "os.environ", "Bun.env", "import.meta.env"})
HOME_CALLS = frozenset({"os.homedir", "Dir.home", "Path.home", "File.HomeDir.my_home",
                        "Deno.homedir", "Etc.getpwuid.dir", "os.path.expanduser"})
IDENTITY_CALLS = frozenset({"File.expand_path", "path.expand", "normalizePath", "path.normalize",
                            "realpath", "abs_path", "Cwd.abs_path", "File.absolute_path",
                            "File.realpath", "String", "str", "tostring", "as.character",
                            "glob", "expand_path", "os.path.abspath", "os.path.realpath",
                            "os.path.normpath", "fs.realpathSync", "decodeURIComponent",
                            "unescape", "urldecode", "rawurldecode"})
JOIN_CALLS = frozenset({"path.join", "path.resolve", "path.posix.join", "path.posix.resolve",
                        "File.join", "file.path", "os.path.join", "File.Spec.catfile",
                        "File.Spec.catdir", "catfile", "catdir", "Pathname.new", "Path"})
CHAR_CALLS = frozenset({"String.fromCharCode", "String.fromCodePoint", "chr", "string.char",
                        "intToUtf8", "utf8.char", "ascii"})
BASE64_CALLS = frozenset({"atob", "base64_decode", "decode_base64", "MIME.Base64.decode_base64",
                          "Base64.decode64", "Base64.strict_decode64", "Base64.urlsafe_decode64",
                          "base64.b64decode", "base64enc.base64decode", "base64decode",
                          "jsonlite.base64_dec"})
HEX_CALLS = frozenset({"hex2bin", "binascii.unhexlify", "bytes.fromhex", "pack"})
REVERSE_CALLS = frozenset({"strrev", "reverse", "rev", "string.reverse", "scalar.reverse"})
ROT13_CALLS = frozenset({"str_rot13"})
OBFUSCATORS = frozenset({"fromCharCode", "fromCodePoint", "chr", "char", "atob", "intToUtf8",
                         "rawToChar", "decode_base64", "base64_decode", "decode64",
                         "strict_decode64", "b64decode", "unpack", "unpack1", "pack", "hex2bin",
                         "unhexlify", "fromhex", "reverse", "strrev", "rev", "str_rot13",
                         "rot13", "gzinflate", "gzuncompress", "fromJSON", "utf8ToInt"})
STRING_METHODS: dict[str, Callable[[str], str]] = {
                  "toString": str, "trim": str.strip, "strip": str.strip, "chomp": str.rstrip,
                  "to_s": str, "toLowerCase": str.lower, "toUpperCase": str.upper,
                  "downcase": str.lower, "upcase": str.upper, "lower": str.lower,
                  "upper": str.upper, "decode": str, "encode": str, "valueOf": str,
                  "normalize": str, "to_str": str, "freeze": str, "dup": str,
                  "expand_path": str, "cleanpath": str, "to_path": str, "split": str}
# Perl string functions often called without parentheses (`reverse 'di'`, `chr 105`).
PARENLESS_STRING_CALLS = frozenset({"reverse", "chr", "lc", "uc", "join", "decode_base64",
                                    "sprintf", "pack"})
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")
_B64 = re.compile(r"[A-Za-z0-9+/=_\-\s]*\Z")
_FORMAT = re.compile(r"%[-+ #0-9.]*[sdifqr]|\{[0-9]*\}")


def _decode_base64(text: str) -> str | None:
    if not _B64.match(text):
        return None
    try:
        raw = base64.b64decode(text.replace("-", "+").replace("_", "/") + "==", validate=False)
    except (binascii.Error, ValueError):
        return None
    return raw.decode("utf-8", "replace")


def _decode_hex(text: str) -> str | None:
    try:
        return bytes.fromhex(text).decode("utf-8", "replace")
    except ValueError:
        return None


def _chars(values: list[Value]) -> Value:
    out = []
    for v in values:
        try:
            out.append(chr(int(v.text, 0)) if v.known else UNKNOWN)
        except (ValueError, OverflowError):
            out.append(UNKNOWN)
    return Value("".join(out), obfuscated=True)


class Folder:
    """Folds token runs of one language; variables come from assignments seen in the code."""

    def __init__(self, lang: str, budget: list[int], depth: int = 0) -> None:
        self.lang = lang
        self.seps = SEPARATORS.get(lang, (".",))
        self.concat_ops = CONCAT.get(lang, ("+",))
        self.budget = budget
        self.depth = depth
        self.vars: dict[str, list[Token] | None] = {}
        self.aliases: dict[str, str] = {}
        self._memo: dict[str, Value] = {}
        self._resolving: set[str] = set()

    # ---- helpers --------------------------------------------------------------------------

    def spend(self, cost: int = 1) -> bool:
        """Take cost from the shared work budget; False once it is spent."""
        self.budget[0] -= cost
        return self.budget[0] > 0

    def close_of(self, toks: list[Token], i: int) -> int:
        """Index of the bracket closing toks[i] (len(toks) if unclosed); costs its length."""
        depth = 0
        for j in range(i, len(toks)):
            t = toks[j]
            if t.kind != "op":
                continue
            if t.text in _OPENERS:
                depth += 1
            elif t.text in _CLOSERS:
                depth -= 1
                if depth == 0:
                    self.spend(j - i)
                    return j
        self.spend(len(toks) - i)
        return len(toks)

    def split(self, toks: list[Token], ops: tuple[str, ...]) -> list[list[Token]]:
        """toks split at top-level operators in ops."""
        out: list[list[Token]] = [[]]
        i = 0
        while i < len(toks):
            t = toks[i]
            if t.kind == "op" and t.text in ("(", "[", "{"):
                j = self.close_of(toks, i)
                out[-1].extend(toks[i:j + 1])
                i = j + 1
                continue
            if t.kind == "op" and t.text in ops:
                out.append([])
            else:
                out[-1].append(t)
            i += 1
        return out

    def args(self, toks: list[Token]) -> tuple[list[list[Token]], dict[str, list[Token]]]:
        """Positional and named arguments of a call's argument tokens."""
        pos: list[list[Token]] = []
        named: dict[str, list[Token]] = {}
        for part in self.split(toks, (",",)):
            if not part:
                continue
            if len(part) > 2 and part[0].kind == "name" and part[1].kind == "op" and \
                    part[1].text in ("=", ":", "=>") and self.lang in ("r", "python", "ruby"):
                named[part[0].text] = part[2:]
            else:
                pos.append(part)
        return pos, named

    def chain(self, toks: list[Token], i: int) -> tuple[list[str], int]:
        """A dotted name starting at toks[i] (a name), and the index after it."""
        parts, j = [toks[i].text], i + 1
        while j + 1 < len(toks) and toks[j].kind == "op" and toks[j].text in self.seps and \
                toks[j + 1].kind == "name":
            parts.append(toks[j + 1].text)
            j += 2
        if self.lang == "node" and parts[-1] in ("require", "import") and j < len(toks) and \
                toks[j].text == "(":
            close = self.close_of(toks, j)
            inner = toks[j + 1:close]
            if len(inner) == 1 and inner[0].kind == "str":
                parts = [module_name(self.pieces(inner[0]).text)]
                j = close + 1
                while j + 1 < len(toks) and toks[j].text in self.seps and \
                        toks[j + 1].kind == "name":
                    parts.append(toks[j + 1].text)
                    j += 2
        return parts, j

    def canon(self, parts: list[str]) -> str:
        """The canonical dotted name of a call, aliases and wrappers resolved."""
        if self.lang == "perl":
            parts = [p.lstrip("&") for p in parts]
        first = parts[0]
        if first in self.aliases:
            parts = self.aliases[first].split(".") + parts[1:]
        while len(parts) > 1 and parts[0] in ("CORE", "GLOBAL", "Kernel", "window", "globalThis",
                                              "builtins", "base", "utils"):
            parts = parts[1:]
        name = ".".join(parts)
        return name.replace(".promises.", ".")

    # ---- folding --------------------------------------------------------------------------

    def pieces(self, tok: Token) -> Value:
        """The Value of a string token (interpolations folded)."""
        values = []
        for is_expr, text in tok.pieces:
            values.append(self.interpolation(text) if is_expr else Value(text))
        return concat(values) if values else Value("")

    def interpolation(self, src: str) -> Value:
        """The Value of `${…}`, `#{…}`, `$name`, `{$name}` inside a string."""
        if self.depth >= 4 or not self.spend(len(src) + 1):
            return UNKNOWN_VALUE
        if src.startswith(("${", "#{")) and src.endswith("}"):
            src = src[2:-1] if self.lang != "perl" else "$" + src[2:-1]
        toks, _ = tokenize(src, self.lang)
        self.depth += 1
        try:
            return self.fold(toks)
        finally:
            self.depth -= 1

    def fold(self, toks: list[Token]) -> Value:
        """The Value of an expression's tokens."""
        if not self.spend():
            return UNKNOWN_VALUE
        while len(toks) > 1 and toks[0].text == "(" and self.close_of(toks, 0) == len(toks) - 1:
            toks = toks[1:-1]
        if not toks:
            return UNKNOWN_VALUE
        terms = self.awk_terms(toks) if self.lang == "awk" else self.split(toks, self.concat_ops)
        value = concat([self.term(t) for t in terms])
        if len(value.text) > MAX_VALUE:
            return Value(value.text[:MAX_VALUE] + UNKNOWN, value.obfuscated)
        return value

    def awk_terms(self, toks: list[Token]) -> list[list[Token]]:
        """awk concatenates by juxtaposition: each primary is a term."""
        terms: list[list[Token]] = []
        i = 0
        while i < len(toks):
            t = toks[i]
            j = i + 1
            if t.text in ("(", "[") and t.kind == "op":
                j = self.close_of(toks, i) + 1
            elif t.kind == "name" and j < len(toks) and toks[j].text in ("(", "["):
                j = self.close_of(toks, j) + 1
            elif t.kind == "op" and t.text == "$":
                j = min(i + 2, len(toks))
            terms.append(toks[i:j])
            i = j
        return terms

    def term(self, toks: list[Token]) -> Value:
        """The Value of one concatenation operand."""
        while len(toks) > 1 and toks[0].text == "(" and self.close_of(toks, 0) == len(toks) - 1:
            toks = toks[1:-1]
        if not toks:
            return UNKNOWN_VALUE
        obfuscated = any(t.kind == "name" and t.text.rsplit(".", 1)[-1] in OBFUSCATORS
                         for t in toks)
        t0, k = toks[0], 1
        if t0.kind == "str":
            v = self.pieces(t0)
        elif t0.kind == "num":
            v = Value(t0.text)
        elif t0.kind == "name":
            v, k = self.primary(toks)
        elif t0.kind == "op" and t0.text == "[":
            close = self.close_of(toks, 0)
            words = self.words(toks[:close + 1])
            k = close + 1
            v = UNKNOWN_VALUE
            if words is not None and k + 2 < len(toks) and toks[k + 1].text == "join":
                sep_toks = toks[k + 3:self.close_of(toks, k + 2)] if toks[k + 2].text == "(" \
                    else []
                sep = self.fold(sep_toks).text if sep_toks else ","
                v = Value(sep.join(w.text for w in words),
                          sep == "" or any(w.obfuscated for w in words))
                k = self.close_of(toks, k + 2) + 1 if toks[k + 2].text == "(" else k + 2
        else:
            return Value(UNKNOWN, obfuscated)
        while k + 1 < len(toks) and toks[k].kind == "op" and toks[k].text in self.seps and \
                toks[k + 1].kind == "name":
            method, k = toks[k + 1].text, k + 2
            margs: list[list[Token]] = []
            if k < len(toks) and toks[k].text == "(":
                close = self.close_of(toks, k)
                margs = self.args(toks[k + 1:close])[0]
                k = close + 1
            v = self.method(v, method, margs)
        if k < len(toks):
            v = UNKNOWN_VALUE
        return Value(v.text, v.obfuscated or obfuscated)

    def method(self, v: Value, name: str, args: list[list[Token]]) -> Value:
        """A string method applied to a folded value."""
        if name == "reverse":
            return Value(v.text[::-1] if v.known else UNKNOWN, obfuscated=True)
        if name == "join":
            sep = self.fold(args[0]).text if args else ","
            return Value(v.text, v.obfuscated or sep == "")
        if name in STRING_METHODS:
            return Value(STRING_METHODS[name](v.text) if v.known else v.text, v.obfuscated)
        if name == "concat":
            return concat([v, *(self.fold(a) for a in args)])
        if name in ("replace", "replaceAll", "gsub", "sub") and len(args) == 2:
            old, new = self.fold(args[0]), self.fold(args[1])
            if v.known and old.known and new.known and old.text:
                return Value(v.text.replace(old.text, new.text), v.obfuscated)
            return UNKNOWN_VALUE
        if name == "chr":
            return _chars([v])
        if name in ("unpack1", "unpack") and args and self.fold(args[0]).text.startswith("m"):
            decoded = _decode_base64(v.text) if v.known else None
            return Value(decoded if decoded is not None else UNKNOWN, obfuscated=True)
        return UNKNOWN_VALUE

    def env(self, key: Value) -> Value:
        """An environment variable's value: the home directory, or unknown."""
        return HOME if key.known and key.text in HOME_NAMES else UNKNOWN_VALUE

    def call_value(self, name: str, pos: list[list[Token]], named: dict[str, list[Token]]) \
            -> Value:
        """The Value a known string function returns."""
        vals = [self.fold(p) for p in pos]
        first = vals[0] if vals else UNKNOWN_VALUE
        last = name.rsplit(".", 1)[-1]
        if name in ENV_CALLS:
            return self.env(first)
        if name in HOME_CALLS:
            return HOME if not vals or first.text in ("~", "") else first
        if name in IDENTITY_CALLS:
            return first
        if name in JOIN_CALLS or last in ("catfile", "catdir"):
            return join_path(vals) if vals else UNKNOWN_VALUE
        if name in ("paste0", "concat", "CONCAT", "str_c", "stringr.str_c"):
            return concat(vals)
        if name == "paste":
            sep = self.fold(named["sep"]).text if "sep" in named else " "
            return Value(sep.join(v.text for v in vals), any(v.obfuscated for v in vals))
        if name in CHAR_CALLS:
            return _chars(self.words(pos[0]) or vals if name == "intToUtf8" and pos else vals)
        if name in BASE64_CALLS or (name == "Buffer.from" and len(vals) > 1 and
                                    vals[1].text in ("base64", "hex", "base64url")):
            decoder = _decode_hex if len(vals) > 1 and vals[1].text == "hex" else _decode_base64
            decoded = decoder(first.text) if first.known else None
            return Value(decoded if decoded is not None else UNKNOWN, obfuscated=True)
        if name == "Buffer.from":
            return first
        if name in HEX_CALLS:
            text = vals[-1].text if vals else ""
            decoded = _decode_hex(text) if vals and vals[-1].known else None
            return Value(decoded if decoded is not None else UNKNOWN, obfuscated=True)
        if name in REVERSE_CALLS:
            return Value(first.text[::-1] if first.known and len(vals) == 1 else UNKNOWN,
                         obfuscated=True)
        if name in ROT13_CALLS:
            return Value(codecs.decode(first.text, "rot13") if first.known else UNKNOWN,
                         obfuscated=True)
        if name in ("sprintf", "format", "string.format", "String.format", "sprintf.sprintf"):
            return self.format(first, vals[1:])
        return UNKNOWN_VALUE

    @staticmethod
    def format(template: Value, vals: list[Value]) -> Value:
        """printf-style formatting with folded arguments."""
        it = iter(vals)
        obfuscated = template.obfuscated or any(v.obfuscated for v in vals)
        text = _FORMAT.sub(lambda m: next(it, UNKNOWN_VALUE).text, template.text)
        return Value(text, obfuscated)

    def primary(self, toks: list[Token]) -> tuple[Value, int]:
        """A name-led primary: a variable, an environment lookup or a known call."""
        if self.lang == "perl" and toks[0].text == "scalar" and len(toks) > 1:
            value, k = self.primary(toks[1:]) if toks[1].kind == "name" else (UNKNOWN_VALUE, 0)
            return value, k + 1
        parts, k = self.chain(toks, 0)
        name = self.canon(parts)
        if self.lang == "perl" and k < len(toks) and toks[k].kind in ("str", "name", "num") \
                and name in PARENLESS_STRING_CALLS:
            return self.call_value(name, self.args(toks[k:])[0], {}), len(toks)
        if k < len(toks) and toks[k].text == "(":
            close = self.close_of(toks, k)
            pos, named = self.args(toks[k + 1:close])
            return self.call_value(name, pos, named), close + 1
        if k < len(toks) and toks[k].text in ("[", "{") and name in ENV_SUBSCRIPTS:
            close = self.close_of(toks, k)
            inner = toks[k + 1:close]
            key = Value(inner[0].text) if len(inner) == 1 and inner[0].kind == "name" \
                else self.fold(inner)
            return self.env(key), close + 1
        if name.startswith(("process.env.", "Bun.env.", "import.meta.env.")):
            return self.env(Value(parts[-1])), k
        if name in ("Dir.home", "os.homedir", "Deno.env.HOME"):
            return HOME, k
        if name in ("os.sep", "path.sep", "File.SEPARATOR", "File.Spec.rootdir"):
            return Value("/"), k
        if len(parts) == 1:
            return self.var(parts[0]), k
        return UNKNOWN_VALUE, k

    def var(self, name: str) -> Value:
        """The Value assigned to a variable (unknown if unassigned or assigned differently)."""
        if name in self._memo:
            return self._memo[name]
        toks = self.vars.get(name)
        if toks is None or name in self._resolving:
            return UNKNOWN_VALUE
        self._resolving.add(name)
        try:
            value = self.fold(toks)
        finally:
            self._resolving.discard(name)
        self._memo[name] = value
        return value

    def words(self, toks: list[Token]) -> list[Value] | None:
        """The elements of a list literal (`[…]`, `qw()`, `c(…)`, `array(…)`, `{…}`), or None."""
        if not toks:
            return None
        t0 = toks[0]
        if len(toks) == 1 and t0.kind == "words":
            return [Value(w) for _, w in t0.pieces]
        body: list[Token] | None = None
        if t0.kind == "op" and t0.text in ("[", "{") and self.close_of(toks, 0) == len(toks) - 1:
            body = toks[1:-1]
            if t0.text == "{" and self.lang != "lua":
                return None
        elif t0.kind == "op" and t0.text == "(" and self.lang == "perl" and \
                self.close_of(toks, 0) == len(toks) - 1:
            body = toks[1:-1]
        elif t0.kind == "name" and t0.text in ("c", "array", "list") and len(toks) > 2 and \
                toks[1].text == "(" and self.close_of(toks, 1) == len(toks) - 1:
            body = toks[2:-1]
        elif len(toks) == 1 and t0.kind == "name" and t0.text in self.vars:
            assigned = self.vars[t0.text]
            if assigned is None or t0.text in self._resolving:
                return None
            self._resolving.add(t0.text)
            try:
                return self.words(assigned)
            finally:
                self._resolving.discard(t0.text)
        if body is None:
            return None
        return [self.fold(part) for part in self.split(body, (",",)) if part]


def module_name(text: str) -> str:
    """A module specifier as a dotted-name root ('node:fs/promises' → 'fs')."""
    text = text.removeprefix("node:")
    return text.split("/", 1)[0] if not text.startswith("@") else text


def quote(value: Value) -> Value:
    """shlex.quote of a folded value (unknown stays unknown)."""
    return Value(shell_quote(value.text), value.obfuscated) if value.known else value
