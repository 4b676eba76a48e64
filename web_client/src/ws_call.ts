// One call over the agent's WebSocket contract, for networks where WebRTC cannot connect: the microphone
// as PCM16 16 kHz binary frames, the agent's PCM16 24 kHz frames played through an audio worklet, its
// events as text frames, {"type": "stop"} to hang up. No DOM here; the UI listens.

import type { CallListener } from "./call";
import workletUrl from "./pcm_worklet.ts?worker&url";

/** What a call over the socket looks like from the page, for the quality panel. */
export interface WebSocketStats {
  bytesReceived: number;
  bytesSent: number;
  /** From the agent's answers to our pings (the contract's {"type": "ping"}). */
  roundTripMs?: number;
  /** How unevenly the agent's 20 ms frames arrive (RFC 3550's smoothed inter-arrival jitter). */
  arrivalJitterMs: number;
  /** Audio waiting in the playback queue, and how often it ran dry. */
  queuedMs: number;
  underruns: number;
}

export interface WebSocketCallOptions {
  /** The socket's URL for a call on `sessionId` (presigned in the cloud, so made as the socket opens). */
  url(sessionId: string): Promise<string>;
  newSessionId(): string;
  connectTimeoutMs?: number;
}

const PING_EVERY_MS = 2_000;
const FRAME_MS = 20;

export class WebSocketCall {
  private socket?: WebSocket;
  private context?: AudioContext;
  private microphone?: MediaStream;
  private playback?: AudioWorkletNode;
  private pingTimer?: ReturnType<typeof setInterval>;
  private pings = new Map<number, number>();
  private nextPing = 0;
  private lastArrival?: number;
  private hungUp = false;
  private connected = false;
  readonly stats: WebSocketStats = { bytesReceived: 0, bytesSent: 0, arrivalJitterMs: 0, queuedMs: 0, underruns: 0 };

  constructor(private readonly options: WebSocketCallOptions, private readonly listener: CallListener) {}

  /** Opens the socket and the audio path; resolves when connected, or after reporting "failed". */
  async connect(microphone: MediaStream): Promise<void> {
    this.microphone = microphone;
    this.hungUp = false;
    this.connected = false;
    Object.assign(this.stats, { bytesReceived: 0, bytesSent: 0, roundTripMs: undefined, arrivalJitterMs: 0, queuedMs: 0, underruns: 0 });
    this.listener.phase({ kind: "connecting", attempt: 1, maxAttempts: 1 });
    try {
      const url = await this.options.url(this.options.newSessionId());
      const socket = await this.open(url);
      if (this.hungUp) {
        socket.close(1000);
        return;
      }
      await this.startAudio(microphone, socket);
    } catch (error) {
      this.release();
      if (this.hungUp) return;
      const message = error instanceof Error ? error.message : String(error);
      this.listener.phase({ kind: "failed", message, code: "websocket_failed" });
      return;
    }
    this.connected = true;
    this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
    this.ping();
    this.listener.phase({ kind: "connected", route: "websocket" });
  }

  setMuted(muted: boolean): void {
    // A muted microphone still sends silence: the agent hangs up on a caller that sends nothing.
    for (const track of this.microphone?.getAudioTracks() ?? []) track.enabled = !muted;
  }

  async hangUp(): Promise<void> {
    this.hungUp = true;
    const socket = this.socket;
    if (socket?.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ type: "stop" }));
      // The agent answers stop with a normal close; do not wait long for it.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 2_000);
        socket.addEventListener("close", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    this.release();
    this.listener.phase({ kind: "ended" });
  }

  hangUpOnUnload(): void {
    this.hungUp = true;
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ type: "stop" }));
    this.release();
  }

  private open(url: string): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url);
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      const timer = setTimeout(() => {
        socket.close();
        reject(new Error("The agent did not answer over WebSocket in time."));
      }, this.options.connectTimeoutMs ?? 10_000);
      socket.onopen = () => {
        clearTimeout(timer);
        resolve(socket);
      };
      socket.onerror = () => {
        clearTimeout(timer);
        reject(new Error("Could not open a WebSocket to the agent."));
      };
      socket.onmessage = (message) => this.onMessage(message);
      socket.onclose = (event) => this.onClose(socket, event);
    });
  }

  private async startAudio(microphone: MediaStream, socket: WebSocket): Promise<void> {
    const context = new AudioContext();
    this.context = context;
    await context.audioWorklet.addModule(workletUrl);
    const capture = new AudioWorkletNode(context, "pcm-capture", { numberOfOutputs: 0 });
    capture.port.onmessage = (message) => {
      if (socket.readyState !== WebSocket.OPEN || !(message.data instanceof ArrayBuffer)) return;
      socket.send(message.data);
      this.stats.bytesSent += message.data.byteLength;
    };
    context.createMediaStreamSource(microphone).connect(capture);
    const playback = new AudioWorkletNode(context, "pcm-playback", { outputChannelCount: [1] });
    playback.port.onmessage = (message) => {
      this.stats.queuedMs = message.data.queuedMs;
      this.stats.underruns = message.data.underruns;
    };
    playback.connect(context.destination);
    this.playback = playback;
    await context.resume();
  }

  private onMessage(message: MessageEvent): void {
    if (message.data instanceof ArrayBuffer) {
      const now = performance.now();
      if (this.lastArrival !== undefined) {
        const deviation = Math.abs(now - this.lastArrival - FRAME_MS);
        this.stats.arrivalJitterMs += (deviation - this.stats.arrivalJitterMs) / 16;
      }
      this.lastArrival = now;
      this.stats.bytesReceived += message.data.byteLength;
      this.playback?.port.postMessage(message.data, [message.data]);
      return;
    }
    let event: any;
    try {
      event = JSON.parse(message.data);
    } catch {
      console.warn("ignored a text frame that is not JSON");
      return;
    }
    if (event?.type === "pong") {
      const sentAt = this.pings.get(event.id);
      this.pings.delete(event.id);
      if (sentAt !== undefined) this.stats.roundTripMs = performance.now() - sentAt;
      return;
    }
    if (event?.type === "state" && event.state === "interrupted") {
      this.playback?.port.postMessage({ type: "clear" }); // barge-in: queued speech goes at once
    }
    this.listener.agentEvent(event);
  }

  private onClose(socket: WebSocket, event: CloseEvent): void {
    if (socket !== this.socket || this.hungUp || !this.connected) return;
    this.release();
    // The agent ended the call (audio timeout, a bad frame, a restart): offer to call again.
    console.warn(`the agent closed the call: ${event.code} ${event.reason}`);
    this.listener.phase({ kind: "dropped" });
  }

  private ping(): void {
    if (this.socket?.readyState !== WebSocket.OPEN) return;
    const id = ++this.nextPing;
    this.pings.set(id, performance.now());
    this.socket.send(JSON.stringify({ type: "ping", id }));
  }

  private release(): void {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close(1000);
    void this.context?.close().catch(() => undefined);
    this.context = undefined;
    this.playback = undefined;
    for (const track of this.microphone?.getTracks() ?? []) track.stop();
    this.microphone = undefined;
    this.pings.clear();
    this.lastArrival = undefined;
  }
}
