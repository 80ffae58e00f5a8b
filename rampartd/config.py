"""The settings table and how it is loaded: flag > RAMPARTD_<NAME> > config.yaml > default."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rampartd.errors import ConfigError
from rampartd.profiles import DEFAULT_PROFILE, PROFILE_NAMES


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive(kind: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a number")
        number = kind(value)
        if not math.isfinite(number) or number <= 0:
            raise ValueError("must be a number greater than 0")
        return number

    parse.__name__ = kind.__name__
    return parse


def _port(value: Any) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError("must be a whole number")
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError("must be between 0 and 65535")
    return port


def _path(value: Any) -> Path:
    return Path(str(value)).expanduser()


def _choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value)
        if text not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return text

    parse.__name__ = "|".join(options)
    return parse


def _guard(value: Any) -> str | tuple[str, ...]:
    from rampartd.policy.guard import parse_relaxations  # the rule ids live with the guard

    return parse_relaxations(value)


def _tool_names(value: Any) -> dict[str, str]:
    from rampartd.toolnames import TOOL_CLASSES

    classes = sorted(set(TOOL_CLASSES.values()))
    if isinstance(value, str):
        pairs = [p.split("=", 1) for p in value.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError("use NAME=CLASS pairs separated by commas")
        value = {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(value, dict):
        raise ValueError("expected a mapping of host tool names to classes")
    for name, cls in value.items():
        if not isinstance(name, str) or not name or cls not in classes:
            raise ValueError(f"{name!r} must map to one of {', '.join(classes)}")
    return dict(value)


@dataclass(frozen=True)
class Setting:
    """One row of the settings table."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    type_name: str
    file_only: bool = False  # only config.yaml may set it (no flag, no environment variable)


# The one declarative table: flags, environment variables, config.yaml and the README come from it.
SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1",
            "address to listen on (loopback unless allow_remote)", "str"),
    Setting("port", _port, 9090, "TCP port to listen on (0 picks a free port)", "int"),
    Setting("allow_remote", _bool, False, "permit a non-loopback host", "bool"),
    Setting("mode", _choice("enforce", "monitor"), "enforce",
            "enforce answers with the decision; monitor records it but allows the call", "str"),
    Setting("policy_dir", _path, None,
            "policy directory (default: $RAMPARTD_HOME/policies)", "path"),
    Setting("profile", _choice(*PROFILE_NAMES), DEFAULT_PROFILE,
            "shipped policy an empty policy directory is seeded with: "
            + ", ".join(PROFILE_NAMES), "str"),
    Setting("log_level", _choice("debug", "info", "warning", "error"), "info",
            "log verbosity", "str"),
    Setting("policy_poll_interval", _positive(float), 0.25,
            "seconds between checks of the policy directory for edits", "float"),
    Setting("db_busy_timeout", _positive(float), 5.0,
            "seconds a database access waits for another process's lock before failing",
            "float"),
    Setting("approval_timeout", _positive(float), 120.0,
            "seconds before a pending approval expires", "float"),
    Setting("max_pending_approvals", _positive(int), 1000,
            "pending approvals before asks get 503", "int"),
    Setting("stream_ping_interval", _positive(float), 15.0,
            "seconds between `: ping` keep-alives", "float"),
    Setting("stream_max_per_credential", _positive(int), 10,
            "concurrent streams per credential", "int"),
    Setting("stream_max_total", _positive(int), 1000, "concurrent streams overall", "int"),
    Setting("stream_queue_size", _positive(int), 1024,
            "events buffered per subscriber before it catches up from the database", "int"),
    Setting("stream_write_timeout", _positive(float), 10.0,
            "seconds a stalled stream client may block a write before it is dropped", "float"),
    Setting("checkpoint_every", _positive(int), 1000,
            "records between signed checkpoints", "int"),
    Setting("checkpoint_seconds", _positive(float), 1.0,
            "seconds at most from a commit to the signed checkpoint that covers it", "float"),
    Setting("tool_names", _tool_names, {},
            "extra host tool names and the class each is evaluated under (NAME=CLASS,...)",
            "mapping"),
    Setting("guard", _guard, "on",
            "the built-in guard: on, off, or a list of its rules to relax", "str/list",
            file_only=True),
    Setting("request_read_timeout", _positive(float), 10.0,
            "seconds a client has to send a whole request (headers and body)", "float"),
    Setting("max_connections", _positive(int), 2000,
            "open connections; beyond it the longest-idle one is closed, or 503", "int"),
    Setting("explicit_allow", _bool, False,
            "hooks answer an explicit allow when allow rules covered every part of a call",
            "bool"),
)
SETTINGS_BY_NAME: dict[str, Setting] = {s.name: s for s in SETTINGS}
ENV_PREFIX = "RAMPARTD_"


@dataclass(frozen=True)
class Settings:
    """Resolved settings; `home` comes from --home or RAMPARTD_HOME, never from config.yaml."""

    home: Path
    host: str
    port: int
    allow_remote: bool
    mode: str
    policy_dir: Path
    profile: str
    log_level: str
    policy_poll_interval: float
    db_busy_timeout: float
    approval_timeout: float
    max_pending_approvals: int
    stream_ping_interval: float
    stream_max_per_credential: int
    stream_max_total: int
    stream_queue_size: int
    stream_write_timeout: float
    checkpoint_every: int
    checkpoint_seconds: float
    tool_names: Mapping[str, str]
    guard: str | tuple[str, ...]
    request_read_timeout: float
    max_connections: int
    explicit_allow: bool = False

    @property
    def token_path(self) -> Path:
        """The admin token file."""
        return self.home / "token"

    @property
    def db_path(self) -> Path:
        """The SQLite database."""
        return self.home / "rampartd.db"


def default_home(env: Mapping[str, str] | None = None) -> Path:
    """$RAMPARTD_HOME or ~/.rampartd."""
    env = os.environ if env is None else env
    return Path(env.get("RAMPARTD_HOME") or "~/.rampartd").expanduser()


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of setting names to values")
    for key in data:
        if key not in SETTINGS_BY_NAME:
            raise ConfigError(f"{path}: unknown setting {key!r}")
    return data


def load_settings(flags: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting; a bad value raises ConfigError naming the setting and its source."""
    env = os.environ if env is None else env
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    home = Path(flags.pop("home")).expanduser() if "home" in flags else default_home(env)
    config_path = home / "config.yaml"
    from_file = _read_config_file(config_path)
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        env_name = ENV_PREFIX + setting.name.upper()
        if setting.file_only and (setting.name in flags or env_name in env):
            raise ConfigError(f"{setting.name} can only be set in {config_path}")
        if setting.name in flags:
            raw, source = flags[setting.name], f"--{setting.name.replace('_', '-')}"
        elif env_name in env:
            raw, source = env[env_name], env_name
        elif setting.name in from_file:
            raw, source = from_file[setting.name], str(config_path)
            if setting.type_name == "path" and not Path(str(raw)).expanduser().is_absolute():
                raw = home / str(raw)  # relative paths in config.yaml are relative to the home
        else:
            values[setting.name] = setting.default
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad value for {setting.name} (from {source}): {exc}") from None
    unknown = set(flags) - set(SETTINGS_BY_NAME)
    if unknown:
        raise ConfigError(f"unknown setting {sorted(unknown)[0]!r}")
    if values["policy_dir"] is None:
        values["policy_dir"] = home / "policies"
    return Settings(home=home, **values)
