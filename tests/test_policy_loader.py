"""Loading policy files: strict YAML, schema errors with file/line/hint, combining files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rampartd.errors import PolicyError
from rampartd.policy import compile_text, load_policy_dir, standard_policy_text
from rampartd.policy.describe import summarize
from rampartd.policy.loader import parse_yaml

REPO = Path(__file__).resolve().parent.parent

MINIMAL = """\
version: "1"
default_action: allow
policies:
  - name: no-rm
    match: {tool: exec}
    rules:
      - action: deny
        when: {command_matches: ["rm *"]}
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(text: str, name: str = "p.yaml") -> PolicyError:
    with pytest.raises(PolicyError) as info:
        compile_text(text, file=name)
    return info.value


def test_minimal_directory_loads(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", MINIMAL)
    write(tmp_path, "notes.txt", "not a policy")
    ps = load_policy_dir(tmp_path)
    assert (ps.policy_count, ps.rule_count, ps.default_action) == (1, 1, "allow")
    assert ps.source_dir == tmp_path


def test_missing_default_action_means_deny() -> None:
    ps = compile_text(MINIMAL.replace("default_action: allow\n", ""))
    assert ps.default_action == "deny"


def test_duplicate_yaml_key_names_both_lines() -> None:
    err = load_error('version: "1"\npolicies: []\npolicies: []\n')
    assert err.file == "p.yaml" and err.line == 3
    assert "duplicate key 'policies'" in err.message and "first on line 2" in err.message


def test_misspelt_key_gets_did_you_mean() -> None:
    err = load_error(MINIMAL.replace("command_matches", "comand_matches"))
    assert err.line == 8
    assert err.hint == "did you mean 'command_matches'?"


def test_unknown_top_level_key_lists_allowed() -> None:
    err = load_error(MINIMAL + "extra: 1\n")
    assert "unknown key 'extra'" in err.message and "allowed keys" in (err.hint or "")


@pytest.mark.parametrize("word", ["no", "off", "yes", "on", "No", "OFF"])
def test_yaml11_booleans_are_not_booleans(word: str) -> None:
    text = MINIMAL.replace("  - name: no-rm\n", f"  - name: no-rm\n    enabled: {word}\n")
    err = load_error(text)
    assert "must be true or false" in err.message
    assert "write true or false" in (err.hint or "")
    assert parse_yaml(f"a: {word}") == {"a": word}


def test_scalars_follow_yaml_12() -> None:
    doc = parse_yaml("a: 1:20\nb: 0755\nc: 0o17\nd: 2024-01-02\ne: 1.5\nf: TRUE\ng: ~\nh: '12'\n")
    assert doc == {"a": "1:20", "b": "0755", "c": 15, "d": "2024-01-02", "e": 1.5, "f": True,
                   "g": None, "h": "12"}


def test_on_as_a_params_value_is_text() -> None:
    ps = compile_text(MINIMAL.replace('{command_matches: ["rm *"]}', "{params: {mode: on}}"))
    check = ps.policies[0].rules[0].params[0]
    assert (check.op, check.value) == ("eq", "on")


def test_duplicate_policy_names_across_files(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", MINIMAL)
    write(tmp_path, "b.yaml", MINIMAL.replace("default_action: allow\n", ""))
    with pytest.raises(PolicyError) as info:
        load_policy_dir(tmp_path)
    err = info.value
    assert err.file == "b.yaml" and err.line == 3
    assert "duplicate policy name 'no-rm'" in err.message and "a.yaml:4" in err.message


def test_conflicting_default_actions(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", MINIMAL)
    write(tmp_path, "b.yaml", 'version: "1"\ndefault_action: deny\npolicies: []\n')
    with pytest.raises(PolicyError, match=r"conflicts with allow in a\.yaml:2"):
        load_policy_dir(tmp_path)


@pytest.mark.parametrize(("pattern", "needle"), [
    ('"re:(unclosed"', "invalid regex"),
    ('"re:(?=lookahead)"', "invalid regex"),
    ('"[abc"', "unclosed '['"),
    ('""', "must not be empty"),
])
def test_bad_patterns_are_load_errors(pattern: str, needle: str) -> None:
    err = load_error(MINIMAL.replace('["rm *"]', f"[{pattern}]"))
    assert needle in err.message
    assert err.line == 8


def test_double_star_inside_a_segment_is_an_error() -> None:
    err = load_error(MINIMAL.replace('{command_matches: ["rm *"]}', '{path_matches: ["a**b/c"]}'))
    assert "whole path segment" in err.message


@pytest.mark.parametrize(("old", "new", "needle"), [
    ("    match: {tool: exec}\n", "    priority: high\n    match: {tool: exec}\n",
     "priority must be a whole number"),
    ("action: deny", "action: Deny", "must be one of allow, deny, ask, watch"),
    ("action: deny", "action: block", "must be one of allow, deny, ask, watch"),
    ("        when: {command_matches: [\"rm *\"]}\n", "", "a rule needs 'when'"),
    ('{command_matches: ["rm *"]}', "{}", "'when' has no conditions"),
    ('{command_matches: ["rm *"]}', "{command_matches: 5}", "must be text or a non-empty list"),
    ('{command_matches: ["rm *"]}', "{params: {amount: {gt: '1000'}}}", "must be a number"),
    ('{command_matches: ["rm *"]}', "{params: {amount: {bigger: 1}}}", "unknown key 'bigger'"),
    ('{command_matches: ["rm *"]}', "{default: true, command_matches: [x]}", "cannot be combined"),
    ('{command_matches: ["rm *"]}', "{call_count: {max: 3}}", "call_count needs 'window'"),
    ('{command_matches: ["rm *"]}', "{call_count: {max: 3, window: soon}}", "positive number"),
    ('version: "1"', 'version: "2"', "unsupported version"),
])
def test_schema_errors_name_the_line(old: str, new: str, needle: str) -> None:
    assert old in MINIMAL
    err = load_error(MINIMAL.replace(old, new))
    assert needle in err.message
    assert err.file == "p.yaml" and err.line is not None


def test_did_you_mean_for_actions() -> None:
    err = load_error(MINIMAL.replace("action: deny", "action: Deny"))
    assert err.hint == "did you mean 'deny'?"


def test_syntax_errors_and_multi_documents() -> None:
    err = load_error('version: "1"\npolicies: [\n')
    assert "YAML syntax error" in err.message and err.line is not None
    err = load_error('version: "1"\n---\nversion: "1"\n')
    assert "more than one YAML document" in err.message


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "")
    with pytest.raises(PolicyError, match="the file is empty") as info:
        load_policy_dir(tmp_path)
    assert info.value.file == "empty.yaml"


def test_alias_bomb_is_refused_by_its_size() -> None:
    # 10**9 values if expanded: refused by counting them, before anything is expanded
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(PolicyError, match="too many values"):
        parse_yaml("\n".join(lines))


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy_dir(tmp_path / "nope")


def test_summary_is_plain_words_and_json() -> None:
    ps = compile_text(MINIMAL.replace('{command_matches: ["rm *"]}',
                                      "{params: {amount: {gt: 1000}}}"))
    summary = summarize(ps)
    json.dumps(summary)
    rule = summary[0]["rules"][0]
    assert rule["description"] == "deny when argument `amount` > 1000"
    assert summary[0]["match"]["tool"] == ["exec"]


def test_shadowed_rules_are_warnings() -> None:
    text = MINIMAL + """\
      - action: allow
        when: {default: true}
      - action: deny
        when: {command_matches: ["curl *"]}
      - action: deny
        when: {command_matches: ["rm *"]}
"""
    warnings = compile_text(text).warnings
    assert any("rule 3" in w and "default: true" in w for w in warnings)
    assert any("rule 4" in w for w in warnings)


def test_standard_policy_is_packaged_and_loads() -> None:
    text = standard_policy_text()
    assert text == (REPO / "policies" / "standard.yaml").read_text(encoding="utf-8")
    ps = compile_text(text, file="standard.yaml")
    assert ps.default_action == "allow"
    assert ps.policy_count >= 10 and not ps.warnings


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "policies" / "examples")
                                        .glob("*.yaml")))
def test_examples_load(name: str) -> None:
    ps = compile_text((REPO / "policies" / "examples" / name).read_text(), file=name)
    assert ps.rule_count >= 1
