"""`make setup` installs Debian's coturn, chromium and libnss3-tools when they are missing, or, when it cannot
(not root, no passwordless sudo, no apt-get), stops with one sentence naming the packages and the command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "system-packages.sh"
# What `make setup` runs before it: taken as done, so only the system-package step runs.
DEPS = (".venv/.installed", "node_modules/.installed", "web_client/node_modules/.installed")


def fake_tools(directory: Path, **scripts: str) -> Path:
    """Executables named after the keyword (``id``, ``sudo``...) that run the given shell body."""
    directory.mkdir()
    for name, body in scripts.items():
        path = directory / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return directory


def missing_everything(tmp_path: Path) -> dict[str, str]:
    """An environment in which none of coturn's turnserver, chromium and NSS's certutil exists."""
    return {
        "HOME": str(tmp_path),
        "TURNSERVER": "turnserver-that-is-not-installed",
        "CHROMIUM": str(tmp_path / "no-chromium"),
        "CERTUTIL": "certutil-that-is-not-installed",
    }


def test_a_user_without_root_or_sudo_is_told_the_packages_and_the_command(tmp_path: Path) -> None:
    bin_dir = fake_tools(tmp_path / "bin", id="echo 1000", sudo="exit 1")
    make = shutil.which("make")
    if make is None:
        pytest.fail("GNU make is required: install it (apt-get install make)")
    result = subprocess.run(
        [make, "--no-print-directory", *(f"-o{d}" for d in DEPS), "setup"],
        cwd=REPO,
        env={**missing_everything(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "sudo apt-get install coturn chromium libnss3-tools" in result.stderr
    assert result.stderr.count("\n") == 2  # the script's one sentence, and make's own line


def test_a_machine_without_apt_get_is_told_which_packages_to_install(tmp_path: Path) -> None:
    # Only the tools the script calls, so there is no apt-get on the PATH.
    bin_dir = fake_tools(tmp_path / "bin", id="echo 1000")
    result = subprocess.run(
        ["/bin/bash", str(SCRIPT)],
        env={**missing_everything(tmp_path), "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "coturn chromium libnss3-tools" in result.stderr and "no apt-get" in result.stderr


def test_passwordless_sudo_installs_the_missing_packages_with_apt_get(tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    bin_dir = fake_tools(
        tmp_path / "bin",
        id="echo 1000",
        # sudo -n true succeeds; every other call is recorded, then run (env apt-get ...).
        sudo=f'shift; [ "$1" = true ] && exit 0; echo "sudo $*" >> {log}; exec "$@"',
        **{"apt-get": f'echo "apt-get $*" >> {log}'},
    )
    env = {**missing_everything(tmp_path), "PATH": f"{bin_dir}:/usr/bin:/bin"}  # fakes first
    result = subprocess.run(["/bin/bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    calls = log.read_text()
    assert "apt-get update" in calls
    assert "apt-get install -y -qq --no-install-recommends coturn chromium libnss3-tools" in calls
    assert calls.count("sudo ") == 2  # both apt-get calls ran through sudo


def test_nothing_is_installed_when_all_are_present(tmp_path: Path) -> None:
    bin_dir = fake_tools(
        tmp_path / "bin", turnserver="exit 0", chromium="exit 0", certutil="exit 0", id="echo 1000"
    )
    result = subprocess.run(
        ["/bin/bash", str(SCRIPT)],
        env={"PATH": str(bin_dir), "TURNSERVER": "turnserver", "CHROMIUM": str(bin_dir / "chromium")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
