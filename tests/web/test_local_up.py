"""scripts/local_up.py (what `make up` runs): agent + web client, clean stop on Ctrl-C / SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from web_support import REPO, load_local_up

from cdk.csp import content_security_policy
from testbed.ports import free_port

SCRIPT = REPO / "scripts" / "local_up.py"


def start_local_up(ports: tuple[int, int], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    web_port, agent_port = ports
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--web-port", str(web_port), "--agent-port", str(agent_port)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(process: subprocess.Popen[str], marker: str, timeout: float = 60.0) -> str:
    seen = ""
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} not printed; output so far:\n{seen}")


def get(url: str) -> tuple[int, bytes, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read(), response.headers


def port_is_closed(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
    except OSError:
        return True
    return False


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_local_up_serves_the_client_in_local_mode_and_stops_both_cleanly(
    production_dist: Path, stop_signal: signal.Signals
) -> None:
    web_port, agent_port = free_port(), free_port()
    process = start_local_up((web_port, agent_port))
    try:
        output = read_until(process, f"http://localhost:{web_port}")
        status, body, headers = get(f"http://localhost:{web_port}/config.json")
        assert json.loads(body) == {
            "mode": "local",
            "agentUrl": f"http://127.0.0.1:{agent_port}",
            "relayOnly": False,
        }
        assert not (production_dist / "config.json").exists(), "config.json must be served, not written"
        status, body, headers = get(f"http://127.0.0.1:{web_port}/")
        assert status == 200 and b"call-state" in body
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        _, ping, _ = get(f"http://127.0.0.1:{agent_port}/ping")
        assert json.loads(ping)["status"] == "Healthy"
        assert "echo" in output
    finally:
        process.send_signal(stop_signal)
        exit_code = process.wait(timeout=30)
    assert exit_code == 0, process.stdout.read() if process.stdout else ""
    assert port_is_closed(agent_port) and port_is_closed(web_port)


def test_nova_sonic_without_credentials_falls_back_to_echo_with_one_line(production_dist: Path) -> None:
    no_credentials = {
        "VOICE": "nova-sonic",
        "AWS_ACCESS_KEY_ID": "",
        "AWS_SECRET_ACCESS_KEY": "",
        "AWS_SESSION_TOKEN": "",
        "AWS_PROFILE": "",
        "AWS_CONFIG_FILE": "/nonexistent/config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
    }
    env = {k: v for k, v in no_credentials.items() if v}
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--web-port", str(free_port()), "--agent-port", str(free_port())],
        env={**{k: v for k, v in os.environ.items() if k not in no_credentials}, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output = read_until(process, "Open http://localhost:")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    assert "VOICE=nova-sonic needs AWS credentials" in output
    assert "Voice agent (echo)" in output


def test_local_up_explains_a_missing_build(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dist", str(tmp_path), "--web-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert "build the web client first" in result.stderr


def directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in policy.split("; ")}


def test_local_csp_is_the_production_csp_plus_the_local_agent() -> None:
    agent_url = "http://127.0.0.1:8080"
    local = directives(load_local_up().local_content_security_policy(agent_url))
    production = directives(content_security_policy("us-east-1"))

    # The agent's signaling and its /ws (CSP's http: source does not cover ws:).
    assert local["connect-src"] == [*production["connect-src"], agent_url, "ws://127.0.0.1:8080"]
    assert {k: v for k, v in local.items() if k != "connect-src"} == {
        k: v for k, v in production.items() if k != "connect-src"
    }


def test_local_up_builds_its_csp_without_importing_aws_cdk() -> None:
    # `make up` must start fast: the CSP comes from cdk/csp.py, not from the CDK app (jsii, ~1 s+).
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('local_up', {str(SCRIPT)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "assert 'http://127.0.0.1:8080' in module.local_content_security_policy('http://127.0.0.1:8080')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aws_cdk', 'jsii', 'constructs')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
