// One voice call: warm-up (ice_config), the peer connection, the offer/answer exchange, the connect
// timeout with retries on a new runtime session, and hang-up. No DOM here; the UI listens.

import { SignalingError, type Signaling } from "./signaling";
import { newRuntimeSessionId } from "./session";

export type Route = "relay" | "direct" | "websocket";

/** Failures of the media path itself (not of signaling): a call over WebSocket may still get through. */
export const MEDIA_PATH_FAILURES = new Set(["ice_timeout", "ice_failed"]);

export type CallPhase =
  | { kind: "warming_up" }
  | { kind: "connecting"; attempt: number; maxAttempts: number }
  | { kind: "connected"; route: Route }
  | { kind: "dropped" }
  | { kind: "ended" }
  | { kind: "failed"; message: string; code: string };

export interface CallListener {
  phase(phase: CallPhase): void;
  /** A JSON message from the agent's "events" data channel (or the WebSocket's text frames). */
  agentEvent(event: unknown): void;
  /** WebRTC only: the agent's audio track. */
  remoteStream?(stream: MediaStream): void;
}

export interface CallTimings {
  /** ICE must reach "connected" this long after the offer is sent, or the attempt is retried. */
  connectTimeoutMs: number;
  /** Longest wait for ICE gathering before the offer goes out and the rest is trickled. */
  gatherCapMs: number;
  maxAttempts: number;
  /** ice_config answers carry TURN credentials that live 5 minutes: refetch older ones. */
  iceConfigMaxAgeMs: number;
  trickleBatchMs: number;
  /** How long a "disconnected" connection may take to recover before the call counts as dropped. */
  disconnectGraceMs: number;
}

export const DEFAULT_TIMINGS: CallTimings = {
  connectTimeoutMs: 10_000,
  gatherCapMs: 2_000,
  maxAttempts: 3,
  iceConfigMaxAgeMs: 4 * 60_000,
  trickleBatchMs: 200,
  disconnectGraceMs: 5_000,
};

interface IceConfig {
  iceServers: RTCIceServer[];
  iceTransportPolicy?: RTCIceTransportPolicy;
  /** Seconds until the TURN credentials expire (KVS), when the agent knows. */
  expiresIn?: number;
}

/** Keep this much of the credentials' life for the call itself to allocate its relays. */
const CREDENTIAL_MARGIN_MS = 30_000;

interface WarmSession {
  sessionId: string;
  iceConfig: IceConfig;
  fetchedAt: number;
}

interface Attempt {
  sessionId: string;
  pc: RTCPeerConnection;
  pcId?: string;
  /** Candidates found after the offer went out, waiting for the pc_id or the next batch. */
  pendingCandidates: RTCIceCandidateInit[];
  flushTimer?: ReturnType<typeof setTimeout>;
  /** Set when this attempt is abandoned, so late callbacks do nothing. */
  abandoned: boolean;
  cancelDeadline?: () => void;
}

class AttemptFailed extends Error {
  constructor(message: string, readonly retryable: boolean, readonly code: string) {
    super(message);
  }
}

function sleepUntil<T>(promise: Promise<T>, ms: number): Promise<T | "timeout"> {
  return Promise.race([promise, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms))]);
}

export class VoiceCall {
  private warm?: WarmSession;
  private warming?: Promise<WarmSession>;
  private attempt?: Attempt;
  private microphone?: MediaStream;
  private hungUp = false;

  constructor(
    private readonly signaling: Signaling,
    private readonly listener: CallListener,
    private readonly options: { relayOnly: () => boolean; timings?: Partial<CallTimings> },
  ) {}

  private get timings(): CallTimings {
    return { ...DEFAULT_TIMINGS, ...this.options.timings };
  }

  /** Fetch ice_config for the next call's session: warms the runtime and saves a request later. */
  warmUp(): Promise<WarmSession> {
    const fresh = this.warm && Date.now() - this.warm.fetchedAt < this.usableForMs(this.warm.iceConfig);
    if (fresh) return Promise.resolve(this.warm!);
    if (!this.warming) {
      const sessionId = newRuntimeSessionId();
      this.warming = this.fetchIceConfig(sessionId)
        .then((iceConfig) => (this.warm = { sessionId, iceConfig, fetchedAt: Date.now() }))
        .finally(() => (this.warming = undefined));
    }
    return this.warming;
  }

  get sessionId(): string | undefined {
    return this.attempt?.sessionId;
  }

  get peerConnection(): RTCPeerConnection | undefined {
    return this.attempt?.pc;
  }

  /** Connects with retries; resolves when connected, or after reporting "failed". */
  async connect(microphone: MediaStream): Promise<void> {
    this.microphone = microphone;
    this.hungUp = false;
    const { maxAttempts } = this.timings;
    for (let n = 1; n <= maxAttempts; n++) {
      if (this.hungUp) return;
      this.listener.phase({ kind: "connecting", attempt: n, maxAttempts });
      try {
        const route = await this.runAttempt(n === 1);
        if (this.hungUp) return;
        this.listener.phase({ kind: "connected", route });
        return;
      } catch (error) {
        this.abandonAttempt();
        if (this.hungUp) return;
        const failure = error instanceof AttemptFailed ? error : toAttemptFailed(error);
        if (!failure.retryable || n === maxAttempts) {
          this.stopMicrophone();
          this.listener.phase({ kind: "failed", message: failure.message, code: failure.code });
          return;
        }
        console.warn(`attempt ${n} failed, retrying on a new session: ${failure.message}`);
      }
    }
  }

  setMuted(muted: boolean): void {
    for (const track of this.microphone?.getAudioTracks() ?? []) track.enabled = !muted;
  }

  /** Sends disconnect (awaited, bounded), closes the connection and stops the microphone. */
  async hangUp(): Promise<void> {
    this.hungUp = true;
    const attempt = this.attempt;
    this.attempt = undefined;
    this.stopMicrophone();
    if (attempt) {
      // disconnect before closing: a closed connection may already have ended the call on the agent,
      // and the agent would then answer 404 for a call that was in fact freed.
      attempt.abandoned = true;
      if (attempt.pcId) {
        await sleepUntil(
          this.signaling.invoke("disconnect", { pc_id: attempt.pcId }, attempt.sessionId).catch(() => undefined),
          3_000,
        );
      }
      this.closeAttempt(attempt);
    }
    this.listener.phase({ kind: "ended" });
  }

  /** For pagehide: fire-and-forget disconnect, then local clean-up. */
  hangUpOnUnload(): void {
    this.hungUp = true;
    const attempt = this.attempt;
    this.attempt = undefined;
    if (attempt?.pcId) this.signaling.invokeOnUnload("disconnect", { pc_id: attempt.pcId }, attempt.sessionId);
    if (attempt) this.closeAttempt(attempt);
    this.stopMicrophone();
  }

  /** How long a fetched ice_config may be used: the configured age, or less if its credentials say so. */
  private usableForMs(iceConfig: IceConfig): number {
    const maxAge = this.timings.iceConfigMaxAgeMs;
    if (typeof iceConfig.expiresIn !== "number") return maxAge;
    return Math.min(maxAge, iceConfig.expiresIn * 1000 - CREDENTIAL_MARGIN_MS);
  }

  private async fetchIceConfig(sessionId: string): Promise<IceConfig> {
    const reply = await this.signaling.invoke("ice_config", {}, sessionId);
    if (!reply || !Array.isArray(reply.iceServers)) {
      throw new SignalingError("The agent sent an ICE configuration without iceServers.", "bad_reply", true);
    }
    return reply as IceConfig;
  }

  private async runAttempt(first: boolean): Promise<Route> {
    // The first attempt uses the warmed session (its ice_config is already here: 2 requests in all).
    // Retries take a new session id, so AgentCore gives them a new microVM.
    let sessionId: string;
    let iceConfig: IceConfig;
    if (first) {
      const warm = await this.warmUp();
      this.warm = undefined; // one call per session
      ({ sessionId, iceConfig } = warm);
    } else {
      sessionId = newRuntimeSessionId();
      iceConfig = await this.fetchIceConfig(sessionId);
    }
    if (this.hungUp) throw new AttemptFailed("hung up", false, "hung_up");

    const relayOnly = this.options.relayOnly();
    const pc = new RTCPeerConnection({
      iceServers: iceConfig.iceServers,
      iceTransportPolicy: relayOnly ? "relay" : "all",
    });
    const attempt: Attempt = { sessionId, pc, pendingCandidates: [], abandoned: false };
    this.attempt = attempt;

    for (const track of this.microphone!.getAudioTracks()) pc.addTrack(track, this.microphone!);
    pc.ontrack = (event) => {
      if (attempt.abandoned) return;
      this.listener.remoteStream?.(event.streams[0] ?? new MediaStream([event.track]));
    };
    // The agent sends state and transcript events here; the channel must exist before the offer.
    const events = pc.createDataChannel("events");
    events.onmessage = (message) => {
      if (attempt.abandoned || typeof message.data !== "string") return;
      try {
        this.listener.agentEvent(JSON.parse(message.data));
      } catch {
        console.warn("ignored a data channel message that is not JSON");
      }
    };

    let gatheringDone: () => void;
    const gathered = new Promise<void>((resolve) => (gatheringDone = resolve));
    let offerSent = false;
    pc.onicecandidate = (event) => {
      if (!event.candidate) return gatheringDone();
      if (offerSent) this.queueCandidate(attempt, event.candidate.toJSON());
    };
    pc.onicegatheringstatechange = () => {
      if (pc.iceGatheringState === "complete") gatheringDone();
    };

    await pc.setLocalDescription(await pc.createOffer());
    await sleepUntil(gathered, this.timings.gatherCapMs);
    // Candidates gathered so far are in localDescription; later ones go out through ice_candidate.
    offerSent = true;
    const offer = pc.localDescription!;
    const connected = this.waitConnected(pc);
    // One deadline covers the offer's answer and ICE: a lost offer or a dead path both end here.
    const abandon = new AbortController();
    const seconds = this.timings.connectTimeoutMs / 1000;
    const timer = setTimeout(() => abandon.abort(), this.timings.connectTimeoutMs);
    const deadline = new Promise<"timeout">((r) => abandon.signal.addEventListener("abort", () => r("timeout")));
    attempt.cancelDeadline = () => clearTimeout(timer);

    let answer: any;
    try {
      answer = await this.signaling.invoke(
        "offer", { sdp: offer.sdp, type: "offer", turnOnly: relayOnly }, sessionId, abandon.signal);
    } catch (error) {
      clearTimeout(timer);
      if (abandon.signal.aborted) {
        throw new AttemptFailed(`The agent did not answer within ${seconds} seconds.`, true, "offer_timeout");
      }
      throw error;
    }
    if (attempt.abandoned || this.hungUp) {
      // Hung up while the offer was out: the agent made a call nobody will use, so end it.
      if (typeof answer?.pc_id === "string") {
        this.signaling.invoke("disconnect", { pc_id: answer.pc_id }, sessionId).catch(() => undefined);
      }
      throw new AttemptFailed("hung up", false, "hung_up");
    }
    if (!answer || typeof answer.sdp !== "string" || typeof answer.pc_id !== "string") {
      throw new AttemptFailed("The agent sent an answer without sdp or pc_id.", true, "bad_reply");
    }
    attempt.pcId = answer.pc_id;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    this.flushCandidates(attempt);

    const outcome = await Promise.race([connected, deadline]);
    clearTimeout(timer);
    if (outcome === "timeout") {
      throw new AttemptFailed(`No media connection within ${seconds} seconds.`, true, "ice_timeout");
    }
    if (outcome === "failed") throw new AttemptFailed("The media connection failed.", true, "ice_failed");
    this.watchForDrop(attempt, events);
    return await selectedRoute(pc);
  }

  private waitConnected(pc: RTCPeerConnection): Promise<"connected" | "failed"> {
    return new Promise((resolve) => {
      const check = () => {
        if (pc.connectionState === "connected") resolve("connected");
        else if (pc.connectionState === "failed" || pc.connectionState === "closed") resolve("failed");
      };
      pc.addEventListener("connectionstatechange", check);
      check();
    });
  }

  /** After connecting: a failed connection, or the agent closing its end, offers a reconnect. */
  private watchForDrop(attempt: Attempt, events: RTCDataChannel): void {
    let disconnectedTimer: ReturnType<typeof setTimeout> | undefined;
    const dropped = () => {
      clearTimeout(disconnectedTimer);
      if (attempt.abandoned || this.attempt !== attempt) return;
      this.abandonAttempt();
      this.stopMicrophone();
      this.listener.phase({ kind: "dropped" });
    };
    attempt.pc.addEventListener("connectionstatechange", () => {
      const state = attempt.pc.connectionState;
      clearTimeout(disconnectedTimer);
      // "disconnected" often heals by itself within a few seconds; "failed" and "closed" do not.
      if (state === "failed" || state === "closed") dropped();
      else if (state === "disconnected") disconnectedTimer = setTimeout(dropped, this.timings.disconnectGraceMs);
    });
    // The agent ends a call (disconnect from elsewhere, audio timeout) by closing the peer connection,
    // which closes the events channel first.
    events.addEventListener("close", dropped);
  }

  private queueCandidate(attempt: Attempt, candidate: RTCIceCandidateInit): void {
    attempt.pendingCandidates.push(candidate);
    if (attempt.pcId && !attempt.flushTimer) {
      attempt.flushTimer = setTimeout(() => this.flushCandidates(attempt), this.timings.trickleBatchMs);
    }
  }

  private flushCandidates(attempt: Attempt): void {
    clearTimeout(attempt.flushTimer);
    attempt.flushTimer = undefined;
    if (attempt.abandoned || !attempt.pcId || attempt.pendingCandidates.length === 0) return;
    const candidates = attempt.pendingCandidates.splice(0).map((c) => ({
      candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex,
    }));
    this.signaling
      .invoke("ice_candidate", { pc_id: attempt.pcId, candidates }, attempt.sessionId)
      .catch((error) => console.warn("ice_candidate failed", error));
  }

  private abandonAttempt(): void {
    const attempt = this.attempt;
    this.attempt = undefined;
    if (!attempt) return;
    this.closeAttempt(attempt);
    // Free the agent's side of a half-made call; nobody waits for the answer.
    if (attempt.pcId) {
      this.signaling.invoke("disconnect", { pc_id: attempt.pcId }, attempt.sessionId).catch(() => undefined);
    }
  }

  private closeAttempt(attempt: Attempt): void {
    attempt.abandoned = true;
    attempt.cancelDeadline?.();
    clearTimeout(attempt.flushTimer);
    attempt.pc.close();
  }

  private stopMicrophone(): void {
    for (const track of this.microphone?.getTracks() ?? []) track.stop();
    this.microphone = undefined;
  }
}

function toAttemptFailed(error: unknown): AttemptFailed {
  if (error instanceof SignalingError) return new AttemptFailed(error.message, error.retryable, error.code);
  const message = error instanceof Error ? error.message : String(error);
  return new AttemptFailed(message, false, "client_error");
}

/** "relay" when the browser's end of the selected candidate pair is a TURN relay candidate. */
export async function selectedRoute(pc: RTCPeerConnection): Promise<"relay" | "direct"> {
  const stats = await pc.getStats();
  let pairId: string | undefined;
  stats.forEach((report) => {
    if (report.type === "transport" && report.selectedCandidatePairId) pairId = report.selectedCandidatePairId;
  });
  let localId: string | undefined;
  stats.forEach((report) => {
    if (report.type === "candidate-pair" && (report.id === pairId || (!pairId && report.nominated && report.state === "succeeded"))) {
      localId = report.localCandidateId;
    }
  });
  const local = localId ? stats.get(localId) : undefined;
  return local?.candidateType === "relay" ? "relay" : "direct";
}
