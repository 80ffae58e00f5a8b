"""Settings precedence, validation and the README's settings table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rampartd.config import SETTINGS, load_settings
from rampartd.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({"home": str(tmp_path)}, env={})
    assert s.host == "127.0.0.1" and s.port == 9090 and s.mode == "enforce"
    assert s.policy_dir == tmp_path / "policies"
    assert s.token_path == tmp_path / "token" and s.db_path == tmp_path / "rampartd.db"


def test_precedence_flag_env_file_default(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("port: 7001\nmode: monitor\napproval_timeout: 30\n")
    s = load_settings({"home": str(tmp_path)}, env={})
    assert (s.port, s.mode, s.approval_timeout) == (7001, "monitor", 30.0)
    s = load_settings({"home": str(tmp_path)}, env={"RAMPARTD_PORT": "7002"})
    assert s.port == 7002 and s.mode == "monitor"
    s = load_settings({"home": str(tmp_path), "port": "7003"}, env={"RAMPARTD_PORT": "7002"})
    assert s.port == 7003
    assert s.stream_ping_interval == 15.0  # untouched: the default


def test_home_from_environment(tmp_path: Path) -> None:
    s = load_settings(env={"RAMPARTD_HOME": str(tmp_path / "h")})
    assert s.home == tmp_path / "h"


def test_unknown_config_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("port: 1\nprot: 2\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings({"home": str(tmp_path)}, env={})


@pytest.mark.parametrize(("source", "value"), [
    ("env", "abc"), ("file", "abc"), ("flag", "70000"),
])
def test_bad_value_names_setting_and_source(tmp_path: Path, source: str, value: str) -> None:
    env: dict[str, str] = {}
    flags: dict[str, str] = {"home": str(tmp_path)}
    if source == "env":
        env["RAMPARTD_PORT"] = value
    elif source == "file":
        (tmp_path / "config.yaml").write_text(f"port: {value}\n")
    else:
        flags["port"] = value
    with pytest.raises(ConfigError, match="port") as err:
        load_settings(flags, env=env)
    assert {"env": "RAMPARTD_PORT", "file": "config.yaml", "flag": "--port"}[source] \
        in err.value.message


def test_bad_choice_and_bool(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        load_settings({"home": str(tmp_path)}, env={"RAMPARTD_MODE": "yolo"})
    with pytest.raises(ConfigError, match="allow_remote"):
        load_settings({"home": str(tmp_path)}, env={"RAMPARTD_ALLOW_REMOTE": "maybe"})
    assert load_settings({"home": str(tmp_path)},
                         env={"RAMPARTD_ALLOW_REMOTE": "true"}).allow_remote


def test_config_file_must_be_a_mapping(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_settings({"home": str(tmp_path)}, env={})


def test_readme_settings_table_matches_code() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- settings-table:start -->")[1]
    section = section.split("<!-- settings-table:end -->")[0]
    rows = [r for r in section.splitlines() if r.startswith("| `")]
    documented = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        name = cells[0].strip("`")
        documented[name] = cells
    assert set(documented) == {s.name for s in SETTINGS}
    for s in SETTINGS:
        cells = documented[s.name]
        env = "(config.yaml only)" if s.file_only else f"`RAMPARTD_{s.name.upper()}`"
        assert cells[1] == env, s.name
        assert cells[2] == s.type_name, s.name
        default = "(home)/policies" if s.default is None else str(s.default).lower() \
            if isinstance(s.default, bool) else str(s.default)
        assert re.sub(r"`", "", cells[3]) == default, s.name
        assert cells[4] == s.help, s.name


@pytest.mark.parametrize(("name", "value"), [
    ("approval_timeout", "nan"), ("approval_timeout", "inf"), ("stream_ping_interval", "-1"),
    ("port", 9.5), ("port", True),
])
def test_non_finite_and_non_integral_values_are_refused(tmp_path: Path, name: str,
                                                        value: object) -> None:
    (tmp_path / "config.yaml").write_text(f"{name}: {value}\n")
    with pytest.raises(ConfigError, match=name):
        load_settings({"home": str(tmp_path)}, env={})


def test_config_file_must_be_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_bytes(b"port: \xff\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_settings({"home": str(tmp_path)}, env={})


def test_relative_paths_in_config_file_are_relative_to_the_home(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("policy_dir: my-policies\n")
    assert load_settings({"home": str(tmp_path)}, env={}).policy_dir == tmp_path / "my-policies"
