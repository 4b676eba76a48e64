"""Fixtures for the browser tests: the built client, real agents, a real coturn, Debian's chromium.

Agents come from tests/support, coturn from testbed. Everything expensive is session-scoped.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import threading
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from web_agentcore_standin import PREFLIGHT_MODES, Preflights, StandinBehaviour, StandinServer
from web_page_probes import record_invocations, wait_for_state
from web_site import WebSite
from web_support import RESULTS, TEST_CREDENTIALS, TEST_REGION, TEST_RUNTIME_ARN, WEB_CLIENT, load_local_up

from testbed.tls import Certificates, CertutilMissing, make_certificates, trusting_home
from testbed.turn import TurnServer
from tests.support.agent_process import AgentProcess

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
local_up = load_local_up()

# Records every RTCPeerConnection and the "events" channel, every WebSocket and the audio it received, every
# text the call state shows, and every CSP violation, before the app runs.
PAGE_INSTRUMENTATION = """
window.__sockets = [];
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    window.__sockets.push(this);
    this.__audio = { frames: 0, peak: 0 };
    // Registered before the app's onmessage, which hands the buffer on to the playback worklet.
    this.addEventListener("message", (e) => {
      if (!(e.data instanceof ArrayBuffer)) return;
      const samples = new Int16Array(e.data);
      this.__audio.frames++;
      for (const v of samples) this.__audio.peak = Math.max(this.__audio.peak, Math.abs(v));
    });
  }
};
window.__pcs = [];
window.__channels = [];
window.__cspViolations = [];
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(...args) {
    super(...args);
    window.__pcs.push(this);
  }
  createDataChannel(...args) {
    const channel = super.createDataChannel(...args);
    window.__channels.push(channel);
    return channel;
  }
};
window.__stateLog = [];
document.addEventListener("DOMContentLoaded", () => {
  const state = document.getElementById("call-state");
  if (!state) return;
  new MutationObserver(() => window.__stateLog.push(state.textContent)).observe(
    state, { childList: true, characterData: true, subtree: true });
});
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI}`);
});
"""


def run_npm(*args: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is required to build web_client (install Node.js 20+ with npm)")
    result = subprocess.run([npm, *args], cwd=WEB_CLIENT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"npm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="session")
def results_dir() -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS


@pytest.fixture(scope="session")
def node_modules() -> None:
    if not (WEB_CLIENT / "node_modules" / ".package-lock.json").exists():
        run_npm("ci", "--no-audit", "--no-fund")


@pytest.fixture(scope="session")
def production_dist(node_modules: None) -> Path:
    """The client exactly as `make up` and the deploy build it."""
    run_npm("run", "build")
    return WEB_CLIENT / "dist"


@pytest.fixture(scope="session")
def test_dist(node_modules: None, results_dir: Path) -> Path:
    """A `--mode test` build: identical, plus the test-credentials hook (dead code in production)."""
    out = results_dir / "dist-test"
    run_npm("exec", "--", "vite", "build", "--mode", "test", "--outDir", str(out), "--emptyOutDir")
    return out


@pytest.fixture(scope="session")
def fake_microphone_wav(results_dir: Path) -> Path:
    """48 kHz mono: a 440 Hz tone, half a second on and a quarter off, so the echo has speech-like gaps."""
    path = results_dir / "fake-microphone.wav"
    rate = 48_000
    frames = bytearray()
    for i in range(rate * 3):
        t = i / rate
        on = (t % 0.75) < 0.5
        frames += struct.pack("<h", int(0.5 * 32767 * math.sin(2 * math.pi * 440 * t)) if on else 0)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(bytes(frames))
    return path


@pytest.fixture(scope="session")
def test_certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA and a certificate for localhost (coturn's TURN over TLS)."""
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def browser_home(test_certificates: Certificates, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The browser's HOME: an NSS database that trusts the test CA, so TURN over TLS is verified properly."""
    try:
        return trusting_home(test_certificates.ca, tmp_path_factory.mktemp("browser-home"))
    except CertutilMissing as missing:
        pytest.fail(str(missing))


@pytest.fixture(scope="session")
def browser(fake_microphone_wav: Path, browser_home: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            env={**os.environ, "HOME": str(browser_home)},
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={fake_microphone_wav}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def open_page(
    browser: Any, results_dir: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """Opens the client in a fresh context with instrumentation.

    The page gets `shot(name)` (a screenshot in test-results/web/), `invocations` (every signaling
    POST, recorded from before the first load) and `console_messages_seen`.
    """
    contexts: list[Any] = []

    def open_(
        url: str,
        *,
        viewport: dict[str, int] | None = None,
        init_script: str | None = None,
        before_load: Callable[[Any], None] | None = None,
    ) -> Any:
        context = browser.new_context(viewport=viewport or {"width": 900, "height": 760})
        contexts.append(context)
        if before_load is not None:
            before_load(context)  # e.g. routes that must see the page's first requests
        context.add_init_script(PAGE_INSTRUMENTATION)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        page.console_messages_seen = []
        page.on("console", lambda m: page.console_messages_seen.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: page.console_messages_seen.append(f"pageerror: {e}"))

        def shot(name: str) -> None:
            page.screenshot(path=str(results_dir / f"{request.node.name}-{name}.png"), full_page=True)

        page.shot = shot
        page.invocations = record_invocations(page)
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def local_page(open_page: Callable[..., Any], local_site: WebSite, echo_agent: str) -> Any:
    """The client served as `make up` serves it: local config.json and the local CSP header, ready."""
    local_site.config = local_up.local_config(echo_agent)
    local_site.headers = {"Content-Security-Policy": local_up.local_content_security_policy(echo_agent)}
    page = open_page(local_site.url)
    wait_for_state(page, "ready")
    return page


@pytest.fixture(scope="session")
def local_site(production_dist: Path) -> Iterator[WebSite]:
    """The production build; each test sets its config.json and headers."""
    site = WebSite(production_dist).start()
    yield site
    site.stop()


@pytest.fixture(scope="session")
def echo_agent_process(local_site: WebSite) -> Iterator[AgentProcess]:
    """The agent as `make up` runs it: echo voice, no ICE servers, the web site's origin allowed."""
    with AgentProcess.start(voice="echo", env={"VOICE_AGENT_CORS_ORIGINS": local_site.url}) as agent:
        yield agent


@pytest.fixture(scope="session")
def echo_agent(echo_agent_process: AgentProcess) -> str:
    return echo_agent_process.url


@pytest.fixture(scope="session")
def relay_agent(turn_server: TurnServer, local_site: WebSite, cloud_site: WebSite) -> Iterator[str]:
    """The suites' relay_agent as the browser needs it: TURN credentials handed to the browser by
    ice_config, both sites' origins allowed (as the deployed agent allows its CloudFront origin)."""
    origins = {"VOICE_AGENT_CORS_ORIGINS": f"{local_site.url},{cloud_site.url}"}
    with AgentProcess.start_relay_only(turn_server.ice_server_env(), origins) as agent:
        yield agent.url


@pytest.fixture(scope="session")
def tls_turn_server(test_certificates: Certificates) -> Iterator[TurnServer]:
    """coturn on loopback with TURN over UDP and over TLS (turns:localhost, the test CA's certificate)."""
    with TurnServer.start(tls=test_certificates) as turn:
        yield turn


@pytest.fixture(scope="session")
def tls_relay_agent(tls_turn_server: TurnServer, local_site: WebSite) -> Iterator[str]:
    """Relay only, handing out coturn's UDP and TLS URIs as KVS does (the agent itself allocates over UDP)."""
    env = {
        "ICE_SERVER_URLS": f"{tls_turn_server.url},{tls_turn_server.tls_url}",
        "VOICE_AGENT_CORS_ORIGINS": local_site.url,
    }
    with AgentProcess.start_relay_only(tls_turn_server.ice_server_env(), env) as agent:
        yield agent.url


@pytest.fixture(scope="session")
def cloud_site(test_dist: Path) -> Iterator[WebSite]:
    site = WebSite(test_dist).start()
    yield site
    site.stop()


def serve_standin(agent_url: str, preflights: Preflights) -> Iterator[StandinServer]:
    behaviour = StandinBehaviour(
        runtime_arn=TEST_RUNTIME_ARN, region=TEST_REGION, credentials=TEST_CREDENTIALS
    )
    server = StandinServer(agent_url=agent_url, behaviour=behaviour, preflights=preflights)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def agentcore_standin_server(relay_agent: str) -> Iterator[StandinServer]:
    """The AgentCore data plane stand-in, in front of the relay-only agent (as in the cloud); it
    answers CORS preflights itself."""
    yield from serve_standin(relay_agent, "standin")


@pytest.fixture
def agentcore_standin(agentcore_standin_server: StandinServer) -> StandinServer:
    agentcore_standin_server.behaviour.reset()
    return agentcore_standin_server


@pytest.fixture(scope="session", params=PREFLIGHT_MODES, ids=lambda mode: f"{mode}-answers-preflight")
def cloud_standin_server(request: pytest.FixtureRequest, relay_agent: str) -> Iterator[StandinServer]:
    """The stand-in in each way AgentCore may treat a preflight: answered by itself, or forwarded to
    the agent, whose CORS middleware then decides."""
    if request.param == "standin":
        yield request.getfixturevalue("agentcore_standin_server")
    else:
        yield from serve_standin(relay_agent, request.param)


@pytest.fixture
def cloud_standin(cloud_standin_server: StandinServer) -> StandinServer:
    cloud_standin_server.behaviour.reset()
    return cloud_standin_server
