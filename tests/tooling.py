"""Installs what some tests need from Debian or npm, so a fresh machine can run the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / ".node"


def ensure_debian_package(package: str, binary: str) -> str:
    """Return the path of `binary`, installing `package` with apt-get if it is missing."""
    found = shutil.which(binary)
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
                   check=True, env=env, timeout=900)
    found = shutil.which(binary)
    assert found, f"{binary} is still missing after installing {package}"
    return found


def ensure_node_package(spec: str, name: str) -> Path:
    """Install an npm package into tests/.node once; returns its node_modules directory."""
    ensure_debian_package("nodejs", "node")
    ensure_debian_package("npm", "npm")
    modules = NODE_DIR / "node_modules"
    if not (modules / name / "package.json").exists():
        NODE_DIR.mkdir(exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent",
                        "--prefix", str(NODE_DIR), spec], check=True, timeout=600)
    return modules
