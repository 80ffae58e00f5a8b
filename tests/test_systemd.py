"""The systemd user unit: installed by the CLI and verified by systemd-analyze."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from rampartd.cli import main
from tests.tooling import ensure_debian_package

REPO = Path(__file__).resolve().parent.parent


def test_install_service_writes_unit(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["install-service", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    unit = (tmp_path / "rampartd.service").read_text()
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    program = exec_start.removeprefix("ExecStart=").split()[0]
    assert Path(program).is_absolute() and os.access(program, os.X_OK)
    assert exec_start.endswith(" serve")
    assert "Type=notify" in unit and "Restart=on-failure" in unit
    assert "systemctl --user enable --now rampartd.service" in result.output


def test_unit_stop_timeout_exceeds_shutdown_time() -> None:
    from rampartd.daemon import SHUTDOWN_TIMEOUT

    unit = (REPO / "systemd" / "rampartd.service").read_text()
    stop = next(line for line in unit.splitlines() if line.startswith("TimeoutStopSec="))
    assert float(stop.split("=")[1]) > SHUTDOWN_TIMEOUT + 1


def test_unit_verifies_without_warnings(tmp_path: Path) -> None:
    ensure_debian_package("systemd", "systemd-analyze")
    result = CliRunner().invoke(main, ["install-service", "--dir", str(tmp_path)])
    assert result.exit_code == 0
    unit = tmp_path / "rampartd.service"
    runtime = tmp_path / "xdg"
    runtime.mkdir(mode=0o700)
    # Verify as a user unit; the user manager needs a runtime directory of its own.
    env = {**os.environ, "SYSTEMD_LOG_LEVEL": "notice", "XDG_RUNTIME_DIR": str(runtime)}
    proc = subprocess.run([shutil.which("systemd-analyze") or "systemd-analyze", "--user", "verify",
                           "--man=no", str(unit)], capture_output=True, text=True, env=env,
                          timeout=60)
    output = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, output
    assert output == "", output


def test_unit_file_limit_fits_the_connection_cap() -> None:
    from rampartd.config import SETTINGS_BY_NAME
    from rampartd.daemon import FILE_HEADROOM

    unit = (REPO / "systemd" / "rampartd.service").read_text()
    limit = next(line for line in unit.splitlines() if line.startswith("LimitNOFILE="))
    cap = SETTINGS_BY_NAME["max_connections"].default
    assert int(limit.split("=")[1]) >= cap + FILE_HEADROOM
