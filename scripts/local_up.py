"""`make up`: the agent on 127.0.0.1:8080 and the web client on http://localhost:7860, in local mode.

The Makefile builds the client first (npm ci && npm run build); this script builds nothing. It starts
the agent as a subprocess, serves web_client/dist with a local config.json generated on the fly
(never written into dist), prints the URL, and on Ctrl-C or SIGTERM stops both and exits 0.
Standard library only, plus the agent's voice registry (voice_agent.voices, which imports no voice),
boto3 (installed) to see whether AWS credentials resolve, and the production Content-Security-Policy
from cdk/csp.py (which imports no aws_cdk).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, ModuleType

from voice_agent.contract import VOICE_ECHO
from voice_agent.voices import VOICES

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIST = REPO / "web_client" / "dist"
AGENT_START_TIMEOUT_SECONDS = 60.0
AGENT_STOP_TIMEOUT_SECONDS = 10.0
# The production policy names one region's AWS endpoints; a local-mode page calls none of them.
LOCAL_CSP_REGION = "us-east-1"


def local_config(agent_url: str) -> dict[str, object]:
    """The web client's config.json in local mode (contract: see web_client/src/config.ts)."""
    return {"mode": "local", "agentUrl": agent_url, "relayOnly": False}


def _production_csp_module() -> ModuleType:
    # By path: scripts/ is what Python puts on sys.path, and the repository's `cdk` package is not installed.
    spec = importlib.util.spec_from_file_location("voice_agent_csp", REPO / "cdk" / "csp.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def local_content_security_policy(agent_url: str) -> str:
    """The CloudFront policy plus the local agent as a connect source (its HTTP signaling and its /ws), so
    CSP mistakes show up locally too."""
    policy = _production_csp_module().content_security_policy
    websocket = "ws" + agent_url.removeprefix("http")  # http: -> ws:, https: -> wss:
    return policy(LOCAL_CSP_REGION, extra_connect_sources=[agent_url, websocket])


def choose_voice(requested: str) -> tuple[str, str | None, str | None]:
    """(voice, region, note): a voice of the agent's registry; one that calls AWS only when boto3 finds
    AWS credentials, else the echo voice."""
    fallback = f"using the {VOICE_ECHO} voice."
    if requested in ("", VOICE_ECHO):
        return VOICE_ECHO, None, None
    entry = VOICES.get(requested)
    if entry is None:
        expected = " or ".join(VOICES)
        return VOICE_ECHO, None, f"Unknown VOICE={requested!r} (expected {expected}): {fallback}"
    if not entry.needs_region:
        return requested, None, None
    try:
        import boto3

        session = boto3.Session()
        credentials = session.get_credentials()
    except Exception as error:  # a broken profile must not stop the echo voice from starting
        return VOICE_ECHO, None, f"VOICE={requested}: AWS credentials could not be read ({error}); {fallback}"
    if credentials is None:
        return VOICE_ECHO, None, f"VOICE={requested} needs AWS credentials and boto3 found none: {fallback}"
    # Nova Sonic is in us-east-1 among others; the agent needs a region either way.
    return requested, session.region_name or "us-east-1", None


class WebClientHandler(SimpleHTTPRequestHandler):
    """Static files from dist, config.json generated per request, and the local CSP header."""

    def __init__(self, *args: object, config_json: bytes, csp: str, **kwargs: object) -> None:
        self._config_json = config_json
        self._csp = csp
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", self._csp)
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/config.json":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(self._config_json)))
            self.end_headers()
            self.wfile.write(self._config_json)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass  # the agent's log is the interesting one


def make_web_server(host: str, port: int, dist: Path, agent_url: str) -> ThreadingHTTPServer:
    handler = functools.partial(
        WebClientHandler,
        directory=str(dist),
        config_json=json.dumps(local_config(agent_url)).encode(),
        csp=local_content_security_policy(agent_url),
    )
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    return ThreadingHTTPServer((host, port), handler)


def agent_command(voice: str, port: int) -> list[str]:
    executable = Path(sys.executable).parent / "voice-agent"
    if not executable.exists():
        raise SystemExit(f"{executable} is missing: run `make setup` first (it installs the agent package).")
    return [
        str(executable),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--voice",
        voice,
        "--ice-servers",
        "none",
    ]


def wait_until_healthy(agent: subprocess.Popen[bytes], url: str, stop: threading.Event) -> bool:
    deadline = time.monotonic() + AGENT_START_TIMEOUT_SECONDS
    while time.monotonic() < deadline and not stop.is_set():
        if agent.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if json.load(response).get("status") in ("Healthy", "HealthyBusy"):
                    return True
        except (OSError, urllib.error.URLError, ValueError):
            pass
        stop.wait(0.25)
    return False


def stop_agent(agent: subprocess.Popen[bytes]) -> None:
    if agent.poll() is not None:
        return
    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(AGENT_STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--web-port", type=int, default=int(os.environ.get("WEB_PORT", "7860")))
    parser.add_argument("--agent-port", type=int, default=int(os.environ.get("AGENT_PORT", "8080")))
    parser.add_argument("--voice", default=os.environ.get("VOICE", VOICE_ECHO), help=" or ".join(VOICES))
    parser.add_argument("--dist", type=Path, default=DEFAULT_DIST, help="the built web client")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.dist / "index.html").is_file():
        print(
            f"{args.dist}/index.html is missing: build the web client first "
            "(npm --prefix web_client ci && npm --prefix web_client run build, or `make up`).",
            file=sys.stderr,
        )
        return 1
    voice, region, note = choose_voice(args.voice)
    if note:
        print(note, flush=True)

    agent_url = f"http://127.0.0.1:{args.agent_port}"
    web_origins = [f"http://localhost:{args.web_port}", f"http://127.0.0.1:{args.web_port}"]
    env = {**os.environ, "VOICE_AGENT_CORS_ORIGINS": ",".join(web_origins)}
    if region and not env.get("AWS_REGION"):
        env["AWS_REGION"] = region
    try:
        web_server = make_web_server("127.0.0.1", args.web_port, args.dist, agent_url)
    except OSError as error:
        print(f"Cannot serve the web client on port {args.web_port}: {error}", file=sys.stderr)
        return 1

    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    # Its own process group, so the terminal's Ctrl-C reaches only us and we stop it in order.
    agent = subprocess.Popen(agent_command(voice, args.agent_port), env=env, start_new_session=True)
    web_thread = threading.Thread(target=web_server.serve_forever, name="web-client", daemon=True)
    try:
        if not wait_until_healthy(agent, agent_url, stop):
            if stop.is_set():
                return 0
            print(
                f"The agent did not become healthy at {agent_url}/ping (exit code {agent.poll()}).",
                file=sys.stderr,
            )
            return 1
        web_thread.start()
        print(f"Voice agent ({voice}) at {agent_url}", flush=True)
        print(f"Open http://localhost:{args.web_port} (Ctrl-C stops both)", flush=True)
        while not stop.is_set():
            if agent.poll() is not None:
                print(f"The agent exited (code {agent.returncode}); stopping.", file=sys.stderr)
                return 1
            stop.wait(0.5)
        print("Stopping…", flush=True)
        return 0
    finally:
        if web_thread.is_alive():
            web_server.shutdown()
        web_server.server_close()
        stop_agent(agent)


if __name__ == "__main__":
    sys.exit(main())
