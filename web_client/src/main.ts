// The page: loads config.json, signs in (cloud), warms the runtime, and drives one call: WebRTC, or the
// agent's WebSocket contract when WebRTC cannot connect (or when the caller picks it under Advanced).

import "./style.css";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@aws-sdk/types";
import { CognitoAuth, SessionExpiredError } from "./auth";
import { MEDIA_PATH_FAILURES, VoiceCall, type CallPhase, type CallTimings, type Route } from "./call";
import { type AppConfig, loadConfig } from "./config";
import { applyAgentEvent, emptyConversation, type Conversation } from "./events";
import { LevelMeter } from "./meter";
import { presignedWebSocketUrl } from "./presign";
import { QualityMeter, drawChart, formatMs } from "./quality";
import { newRuntimeSessionId } from "./session";
import { CloudSignaling, LocalSignaling, type Signaling } from "./signaling";
import { WebSocketCall } from "./ws_call";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`missing #${id}`);
  return found as T;
}

const ui = {
  state: element<HTMLParagraphElement>("call-state"),
  error: element<HTMLParagraphElement>("error"),
  connect: element<HTMLButtonElement>("connect"),
  hangUp: element<HTMLButtonElement>("hang-up"),
  mute: element<HTMLButtonElement>("mute"),
  level: element<HTMLMeterElement>("mic-level"),
  relayOnly: element<HTMLInputElement>("relay-only"),
  relayHint: element<HTMLParagraphElement>("relay-hint"),
  transport: element<HTMLSelectElement>("transport"),
  quality: element<HTMLElement>("quality"),
  qualityTransport: element<HTMLElement>("q-transport"),
  qualityRtt: element<HTMLElement>("q-rtt"),
  qualityLoss: element<HTMLElement>("q-loss"),
  qualityJitter: element<HTMLElement>("q-jitter"),
  qualityBitrate: element<HTMLElement>("q-bitrate"),
  qualityReply: element<HTMLElement>("q-reply"),
  qualityChart: element<HTMLCanvasElement>("q-chart"),
  audio: element<HTMLAudioElement>("remote-audio"),
  transcript: element<HTMLOListElement>("transcript"),
  transcriptEmpty: element<HTMLParagraphElement>("transcript-empty"),
  signIn: element<HTMLButtonElement>("sign-in"),
  signOut: element<HTMLButtonElement>("sign-out"),
  userName: element<HTMLSpanElement>("user-name"),
};

const AGENT_STATE_TEXT = {
  listening: "Connected: listening",
  agent_speaking: "Agent speaking",
  interrupted: "Interrupted",
} as const;

function showState(state: string, text: string): void {
  ui.state.dataset.state = state;
  ui.state.textContent = text;
}

function showError(message?: string): void {
  ui.error.hidden = !message;
  ui.error.textContent = message ?? "";
}

function renderTranscript(conversation: Conversation): void {
  ui.transcript.replaceChildren(
    ...conversation.transcript.map((line) => {
      const item = document.createElement("li");
      item.className = `${line.role}${line.final ? "" : " partial"}`;
      item.dataset.role = line.role;
      const speaker = document.createElement("span");
      speaker.className = "speaker";
      speaker.textContent = line.role === "user" ? "You:" : "Agent:";
      item.append(speaker, document.createTextNode(line.text));
      return item;
    }),
  );
  ui.transcriptEmpty.hidden = conversation.transcript.length > 0;
}

/** Test builds only (`vite build --mode test`): fixed credentials instead of Cognito. Dead code otherwise. */
function testCredentials(): AwsCredentialIdentity | undefined {
  if (import.meta.env.MODE !== "test") return undefined;
  return (window as unknown as { __VOICE_AGENT_TEST_CREDENTIALS__?: AwsCredentialIdentity })
    .__VOICE_AGENT_TEST_CREDENTIALS__;
}

/** Test builds only: shorter connect deadlines, so a test of the WebSocket fallback takes seconds. */
function testTimings(): Partial<CallTimings> | undefined {
  if (import.meta.env.MODE !== "test") return undefined;
  return (window as unknown as { __VOICE_AGENT_TEST_TIMINGS__?: Partial<CallTimings> }).__VOICE_AGENT_TEST_TIMINGS__;
}

const ROUTE_TEXT: Record<Route, { connected: string; via: string }> = {
  relay: { connected: "Connected via relay (TURN)", via: "via relay" },
  direct: { connected: "Connected via direct path", via: "direct" },
  websocket: { connected: "Connected via WebSocket", via: "via WebSocket" },
};

const QUALITY_EVERY_MS = 1_000;

class App {
  private call?: VoiceCall;
  private wsCall?: WebSocketCall;
  /** The call in progress: WebRTC unless the caller chose WebSocket or WebRTC could not connect. */
  private active: "webrtc" | "websocket" = "webrtc";
  private credentials?: AwsCredentialIdentityProvider | AwsCredentialIdentity;
  private conversation = emptyConversation();
  private readonly meter = new LevelMeter();
  private connectedRoute?: Route;
  private inCall = false;
  private quality?: QualityMeter;
  private qualityTimer?: ReturnType<typeof setInterval>;

  constructor(private readonly config: AppConfig, private readonly auth?: CognitoAuth) {}

  async start(): Promise<void> {
    ui.relayOnly.checked = this.config.relayOnly;
    if (this.config.mode === "cloud") {
      // Behind AgentCore's NAT gateway only TURN relay works, so the toggle stays on in the cloud.
      ui.relayOnly.disabled = true;
      ui.relayHint.textContent = "Cloud calls always use the TURN relay.";
    } else {
      ui.relayHint.textContent = "Local mode: turn this on to test the TURN path.";
    }
    ui.connect.addEventListener("click", () => void this.connect());
    ui.hangUp.addEventListener("click", () => void this.hangUp());
    ui.mute.addEventListener("click", () => this.toggleMute());
    ui.signOut.addEventListener("click", () => this.auth?.signOut());
    ui.signIn.addEventListener("click", () => void this.auth?.signIn());
    window.addEventListener("pagehide", () => {
      this.call?.hangUpOnUnload();
      this.wsCall?.hangUpOnUnload();
    });

    const signaling = await this.signaling();
    if (!signaling) return;
    const timings = testTimings();
    this.call = new VoiceCall(signaling, {
      phase: (phase) => this.onPhase(phase),
      agentEvent: (event) => this.onAgentEvent(event),
      remoteStream: (stream) => {
        ui.audio.srcObject = stream;
        void ui.audio.play().catch(() => undefined);
      },
    }, { relayOnly: () => ui.relayOnly.checked, timings });
    this.wsCall = new WebSocketCall({
      url: (sessionId) => this.webSocketUrl(sessionId),
      newSessionId: newRuntimeSessionId,
      connectTimeoutMs: timings?.connectTimeoutMs,
    }, {
      phase: (phase) => this.onPhase(phase),
      agentEvent: (event) => this.onAgentEvent(event),
    });
    await this.warmUp();
  }

  /** Local: the agent's own /ws. Cloud: InvokeAgentRuntimeWithWebSocketStream, presigned now. */
  private webSocketUrl(sessionId: string): Promise<string> {
    if (this.config.mode === "local") return Promise.resolve(`${this.config.agentUrl.replace(/^http/, "ws")}/ws`);
    return presignedWebSocketUrl(this.config, this.credentials!, sessionId);
  }

  /** Local: plain fetch. Cloud: sign in first (or use test credentials in a test build). */
  private async signaling(): Promise<Signaling | undefined> {
    if (this.config.mode === "local") {
      ui.userName.textContent = "Local mode (no sign-in)";
      return new LocalSignaling(this.config.agentUrl);
    }
    const fixed = testCredentials();
    if (fixed) {
      const signaling = new CloudSignaling(this.config, fixed);
      this.credentials = signaling.credentials;
      return signaling;
    }
    const auth = this.auth!;
    showState("signing_in", "Signing in…");
    try {
      await auth.completeSignIn();
    } catch (error) {
      showError((error as Error).message);
    }
    if (!auth.signedIn) {
      showState("signed_out", "Sign in to talk to the agent.");
      ui.signIn.hidden = false;
      ui.signIn.focus();
      return undefined;
    }
    ui.userName.textContent = auth.userName ?? "Signed in";
    ui.signOut.hidden = false;
    const signaling = new CloudSignaling(this.config, auth.credentials());
    this.credentials = signaling.credentials; // one cache for both transports
    return signaling;
  }

  private async warmUp(): Promise<void> {
    showState("warming_up", "Warming up the agent…");
    try {
      await this.call!.warmUp();
      showState("ready", "Ready. Press Connect to talk.");
      showError();
    } catch (error) {
      this.handleFailure(error as Error);
      showState("ready", "Press Connect to try again.");
    }
    ui.connect.disabled = false;
  }

  private async connect(): Promise<void> {
    if (this.inCall || !this.call) return;
    showError();
    this.conversation = emptyConversation();
    renderTranscript(this.conversation);
    let microphone: MediaStream;
    try {
      microphone = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      showError(`The microphone is not available: ${(error as Error).message}. Allow microphone access and try again.`);
      return;
    }
    this.inCall = true;
    delete ui.state.dataset.attempt;
    ui.connect.disabled = true;
    ui.hangUp.disabled = false;
    ui.mute.disabled = false;
    this.setMuted(false);
    this.meter.start(microphone, (level) => (ui.level.value = level));
    this.active = ui.transport.value === "websocket" ? "websocket" : "webrtc";
    if (this.active === "websocket") await this.wsCall!.connect(microphone);
    else await this.call.connect(microphone);
  }

  /** WebRTC could not connect after its retries: the same call over the WebSocket contract. */
  private async fallBackToWebSocket(): Promise<void> {
    this.active = "websocket";
    showState("connecting", "WebRTC could not connect. Trying WebSocket…");
    let microphone: MediaStream;
    try {
      microphone = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
    } catch (error) {
      this.onPhase({ kind: "failed", message: (error as Error).message, code: "microphone" });
      return;
    }
    this.meter.start(microphone, (level) => (ui.level.value = level));
    const muted = ui.mute.getAttribute("aria-pressed") === "true";
    for (const track of microphone.getAudioTracks()) track.enabled = !muted; // as the caller left it
    await this.wsCall!.connect(microphone);
  }

  private async hangUp(): Promise<void> {
    ui.hangUp.disabled = true;
    if (this.active === "websocket") await this.wsCall?.hangUp();
    else await this.call?.hangUp();
  }

  private toggleMute(): void {
    this.setMuted(ui.mute.getAttribute("aria-pressed") !== "true");
  }

  private setMuted(muted: boolean): void {
    ui.mute.setAttribute("aria-pressed", String(muted));
    ui.mute.textContent = muted ? "Unmute" : "Mute";
    this.call?.setMuted(muted);
    this.wsCall?.setMuted(muted);
  }

  private endCallUi(): void {
    this.inCall = false;
    this.connectedRoute = undefined;
    delete ui.state.dataset.route;
    this.stopQuality();
    this.meter.stop();
    ui.level.value = 0;
    ui.audio.srcObject = null;
    ui.connect.disabled = false;
    ui.hangUp.disabled = true;
    ui.mute.disabled = true;
    this.setMuted(false);
  }

  private onPhase(phase: CallPhase): void {
    switch (phase.kind) {
      case "warming_up":
        showState("warming_up", "Warming up the agent…");
        break;
      case "connecting":
        showState("connecting", this.active === "websocket"
          ? "Connecting over WebSocket…"
          : phase.attempt === 1
            ? "Connecting…"
            : `Connecting… (attempt ${phase.attempt} of ${phase.maxAttempts})`);
        ui.state.dataset.attempt = String(phase.attempt);
        break;
      case "connected":
        this.connectedRoute = phase.route;
        ui.state.dataset.route = phase.route;
        this.startQuality();
        // The agent's first "listening" may have arrived while the route was being read.
        if (this.conversation.agentState) this.showAgentState();
        else showState("connected", ROUTE_TEXT[phase.route].connected);
        break;
      case "dropped":
        this.endCallUi();
        showState("dropped", "The connection dropped.");
        ui.connect.textContent = "Reconnect";
        ui.connect.focus();
        break;
      case "ended":
        this.endCallUi();
        ui.connect.textContent = "Connect";
        showState("ended", "Call ended.");
        // Warm the next WebRTC call's session now, so Connect is again two requests.
        if (this.active === "webrtc") void this.call?.warmUp().catch(() => undefined);
        break;
      case "failed":
        if (this.active === "webrtc" && ui.transport.value === "auto" && MEDIA_PATH_FAILURES.has(phase.code)) {
          void this.fallBackToWebSocket();
          break;
        }
        this.endCallUi();
        ui.connect.textContent = "Try again";
        showState("failed", "Could not connect.");
        this.handleFailure(Object.assign(new Error(phase.message), { code: phase.code }));
        break;
    }
  }

  private onAgentEvent(event: unknown): void {
    const before = this.conversation;
    this.conversation = applyAgentEvent(this.conversation, event);
    if (this.conversation.transcript !== before.transcript) renderTranscript(this.conversation);
    if (this.conversation.error !== before.error) showError(this.conversation.error);
    if (this.conversation.agentState !== before.agentState && this.connectedRoute) this.showAgentState();
    if (this.conversation.replyDelayMs !== before.replyDelayMs) {
      ui.qualityReply.textContent = formatMs(this.conversation.replyDelayMs);
    }
  }

  private showAgentState(): void {
    const agentState = this.conversation.agentState;
    if (!agentState || !this.inCall || !this.connectedRoute) return;
    showState(agentState, `${AGENT_STATE_TEXT[agentState]} (${ROUTE_TEXT[this.connectedRoute].via})`);
  }

  /** The quality panel: one sample a second from the call in progress. */
  private startQuality(): void {
    this.stopQuality();
    const pc = this.call?.peerConnection;
    this.quality = this.active === "websocket" || !pc
      ? QualityMeter.forWebSocket(this.wsCall!.stats)
      : QualityMeter.forPeerConnection(pc);
    ui.quality.hidden = false;
    ui.qualityReply.textContent = formatMs(this.conversation.replyDelayMs);
    const tick = () => void this.quality?.sample().then((sample) => {
      if (!this.quality) return;
      ui.qualityTransport.textContent = sample.transport;
      ui.qualityRtt.textContent = formatMs(sample.roundTripMs);
      ui.qualityLoss.textContent = sample.lossPercent !== undefined
        ? `${sample.lossPercent.toFixed(1)} %`
        : sample.transport === "WebSocket" ? "– (TCP resends)" : "–";
      ui.qualityJitter.textContent = formatMs(sample.jitterMs);
      ui.qualityBitrate.textContent = sample.inKbps === undefined
        ? "–"
        : `${Math.round(sample.inKbps)} in / ${Math.round(sample.outKbps ?? 0)} out kbit/s`;
      ui.quality.dataset.samples = String(this.quality.history.length);
      drawChart(ui.qualityChart, this.quality.history);
    }).catch(() => undefined);
    tick();
    this.qualityTimer = setInterval(tick, QUALITY_EVERY_MS);
  }

  /** Stops sampling; the panel keeps the call's last figures until the next call starts. */
  private stopQuality(): void {
    clearInterval(this.qualityTimer);
    this.qualityTimer = undefined;
    this.quality = undefined;
  }

  private handleFailure(error: Error & { code?: string }): void {
    if (error instanceof SessionExpiredError || error.code === "expired_session") {
      showError("Your session has expired. Please sign in again.");
      ui.signOut.hidden = true;
      ui.signIn.hidden = false;
      return;
    }
    showError(error.message);
  }
}

async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = await loadConfig();
  } catch (error) {
    showState("failed", "The page is not configured.");
    showError((error as Error).message);
    return;
  }
  document.body.dataset.mode = config.mode;
  const auth = config.mode === "cloud" && !testCredentials() ? new CognitoAuth(config) : undefined;
  await new App(config, auth).start();
}

void main();
