"""Policy files → plain Python documents that remember their line numbers.

The YAML is read strictly, because a policy file that silently means something else is worse
than one that does not load:

- duplicate keys in a mapping are an error (plain PyYAML keeps the last one);
- only `true` and `false` (any case) are booleans. YAML 1.1's `yes`, `no`, `on`, `off`, `y`
  and `n` stay strings, so `enabled: no` is reported as a wrong type ("write true or false")
  instead of quietly disabling a policy, and `eq: on` compares with the text "on";
- numbers follow YAML 1.2: decimal integers, `0x`/`0o` integers and decimal floats. `1:20`
  (a YAML 1.1 base-60 number) and `0755` (octal in YAML 1.1) stay strings, and dates are
  never converted;
- `null`, `~` and empty values are None; merge keys (`<<`) are not supported;
- anchors and aliases work, with a budget so a small file cannot expand into a huge one.

This is the only module of the policy package that touches the file system.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rampartd.errors import PolicyError

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_NODES = 200_000  # alias expansion budget per file
MAX_DEPTH = 64

_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_FLOAT = re.compile(r"[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))(?:[eE][-+]?[0-9]+)?\Z")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)\Z")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)\Z")


class YMap(dict[str, Any]):
    """A mapping from a policy file, with the line of the mapping and of each key."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """The line a key was written on (the mapping's line if unknown)."""
        return self.key_lines.get(key, self.line)


class YList(list[Any]):
    """A sequence from a policy file, with the line of the sequence and of each item."""

    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        """The line an item was written on."""
        if 0 <= index < len(self.item_lines):
            return self.item_lines[index]
        return self.line


@dataclass(frozen=True, slots=True)
class RawDoc:
    """One policy file's content (a YMap for a well-formed file) and where it came from."""

    file: str
    data: Any


def _scalar(node: yaml.ScalarNode) -> Any:
    value: str = node.value
    if node.style is not None:  # quoted or block scalar: always text
        return value
    if value in ("", "~", "null", "Null", "NULL"):
        return None
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    if _INT.match(value):
        return int(value)
    if _HEX.match(value):
        return int(value[2:], 16)
    if _OCT.match(value):
        return int(value[2:], 8)
    if _FLOAT.match(value):
        return float(value)
    if _INF.match(value):
        return float("-inf") if value.startswith("-") else float("inf")
    if _NAN.match(value):
        return float("nan")
    return value


class _Builder:
    """Turns a composed YAML node graph into YMap/YList/scalars, strictly."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.budget = MAX_NODES

    def error(self, node: yaml.Node, message: str, hint: str | None = None) -> PolicyError:
        return PolicyError(message, file=self.file, line=node.start_mark.line + 1, hint=hint)

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.error(node, "the file expands to too many values (aliases?)",
                             "write the values out or use fewer aliases")
        if depth > MAX_DEPTH:
            raise self.error(node, "the file is nested too deeply")
        if isinstance(node, yaml.ScalarNode):
            return _scalar(node)
        if isinstance(node, yaml.SequenceNode):
            seq = YList()
            seq.line = node.start_mark.line + 1
            seq.item_lines = []
            for item in node.value:
                seq.append(self.build(item, depth + 1))
                seq.item_lines.append(item.start_mark.line + 1)
            return seq
        if isinstance(node, yaml.MappingNode):
            mapping = YMap()
            mapping.line = node.start_mark.line + 1
            mapping.key_lines = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.error(key_node, "a key must be plain text")
                key = key_node.value
                if key == "<<" and key_node.style is None:
                    raise self.error(key_node, "merge keys (<<) are not supported",
                                     "write the keys out")
                if key in mapping:
                    first = mapping.key_lines[key]
                    raise self.error(key_node, f"duplicate key '{key}' (first on line {first})",
                                     "remove one of them; YAML would silently keep the last")
                mapping.key_lines[key] = key_node.start_mark.line + 1
                mapping[key] = self.build(value_node, depth + 1)
            return mapping
        raise self.error(node, "unsupported YAML node")  # pragma: no cover


def parse_yaml(text: str, file: str = "<policy>") -> Any:
    """Parse one YAML document strictly; raises PolicyError naming the file and line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = exc.problem or exc.context or "invalid YAML"
        if "expected a single document" in str(exc):
            reason = "more than one YAML document ('---') in one file"
        raise PolicyError(f"YAML syntax error: {reason}", file=file, line=line,
                          hint="check indentation, quotes and colons") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"YAML error: {exc}", file=file) from None
    except RecursionError:
        raise PolicyError("the file is nested too deeply", file=file) from None
    if node is None:
        return None
    try:
        return _Builder(file).build(node)
    finally:
        # Freed at once, the nodes of a big file hold the GIL for tens of milliseconds; held
        # in a list emptied root first, each is freed on its own and other threads run between.
        nodes = _graph_nodes(node)
        del node
        while nodes:
            nodes.pop()


def _graph_nodes(root: yaml.Node) -> list[yaml.Node]:
    """Every node of a composed graph once, children before their parents, the root last."""
    seen: set[int] = set()
    order: list[yaml.Node] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        order.append(node)
        if isinstance(node, yaml.MappingNode):
            stack += [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    order.reverse()
    return order


def policy_files(directory: Path) -> list[Path]:
    """The `*.yaml` files of a policy directory, in name order (hidden files skipped)."""
    if not directory.is_dir():
        raise PolicyError(f"policy directory {directory} does not exist or is not a directory",
                          file=str(directory), hint="create it or point policy_dir elsewhere")
    return sorted(p for p in directory.glob("*.yaml")
                  if p.is_file() and not p.name.startswith("."))


def read_policy_file(path: Path) -> RawDoc:
    """Read and parse one policy file."""
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"cannot read the file: {exc.strerror or exc}", file=name) from None
    if len(raw) > MAX_FILE_BYTES:
        raise PolicyError("the file is larger than 4 MiB", file=name)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"the file is not UTF-8 ({exc.reason})", file=name) from None
    return RawDoc(name, parse_yaml(text, name))


def read_policy_dir(directory: Path) -> Iterator[RawDoc]:
    """Every policy file of a directory, parsed, in name order."""
    for path in policy_files(directory):
        yield read_policy_file(path)
