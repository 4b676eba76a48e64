// Call quality for the panel: one sample a second, from getStats() for WebRTC and from the socket's own
// counters for WebSocket calls, and the last minute of round-trip time and jitter as a small chart.

import type { WebSocketStats } from "./ws_call";

export interface QualitySample {
  /** "WebRTC via relay (TURN over TLS)", "WebRTC, direct", "WebSocket". */
  transport: string;
  roundTripMs?: number;
  /** Share of the agent's packets lost over the last second (WebRTC; TCP loses none it delivers). */
  lossPercent?: number;
  jitterMs?: number;
  /** Received and sent, kbit/s over the last second. */
  inKbps?: number;
  outKbps?: number;
}

interface Counters {
  at: number;
  bytesIn: number;
  bytesOut: number;
  packetsReceived?: number;
  packetsLost?: number;
}

const HISTORY = 60;

function kbps(bytes: number, ms: number): number {
  return ms > 0 ? (bytes * 8) / ms : 0; // bytes over ms -> kbit/s
}

/** Samples one call; `sample()` once a second gives the figures since the previous one. */
export class QualityMeter {
  private previous?: Counters;
  readonly history: QualitySample[] = [];

  constructor(private readonly read: () => Promise<{ sample: QualitySample; counters: Counters }>) {}

  static forPeerConnection(pc: RTCPeerConnection): QualityMeter {
    return new QualityMeter(async () => webrtcReading(await pc.getStats()));
  }

  static forWebSocket(stats: WebSocketStats): QualityMeter {
    return new QualityMeter(async () => ({
      sample: { transport: "WebSocket", roundTripMs: stats.roundTripMs, jitterMs: stats.arrivalJitterMs },
      counters: { at: performance.now(), bytesIn: stats.bytesReceived, bytesOut: stats.bytesSent },
    }));
  }

  async sample(): Promise<QualitySample> {
    const { sample, counters } = await this.read();
    const previous = this.previous;
    this.previous = counters;
    if (previous) {
      const ms = counters.at - previous.at;
      sample.inKbps = kbps(counters.bytesIn - previous.bytesIn, ms);
      sample.outKbps = kbps(counters.bytesOut - previous.bytesOut, ms);
      if (counters.packetsReceived !== undefined && previous.packetsReceived !== undefined) {
        const received = counters.packetsReceived - previous.packetsReceived;
        const lost = (counters.packetsLost ?? 0) - (previous.packetsLost ?? 0);
        sample.lossPercent = received + lost > 0 ? (Math.max(0, lost) / (received + lost)) * 100 : 0;
      }
    }
    this.history.push(sample);
    if (this.history.length > HISTORY) this.history.shift();
    return sample;
  }
}

function webrtcReading(stats: RTCStatsReport): { sample: QualitySample; counters: Counters } {
  let pair: any;
  let inbound: any;
  let outbound: any;
  stats.forEach((report: any) => {
    if (report.type === "transport" && report.selectedCandidatePairId) pair = stats.get(report.selectedCandidatePairId);
    if (report.type === "inbound-rtp" && report.kind === "audio") inbound = report;
    if (report.type === "outbound-rtp" && report.kind === "audio") outbound = report;
  });
  const local: any = pair ? stats.get(pair.localCandidateId) : undefined;
  let transport = "WebRTC";
  if (local?.candidateType === "relay") {
    const over = { tls: "TLS", tcp: "TCP", udp: "UDP" }[local.relayProtocol as string] ?? "?";
    transport = `WebRTC via relay (TURN over ${over})`;
  } else if (local) {
    transport = "WebRTC, direct";
  }
  return {
    sample: {
      transport,
      roundTripMs: typeof pair?.currentRoundTripTime === "number" ? pair.currentRoundTripTime * 1000 : undefined,
      jitterMs: typeof inbound?.jitter === "number" ? inbound.jitter * 1000 : undefined,
    },
    counters: {
      at: performance.now(),
      bytesIn: inbound?.bytesReceived ?? 0,
      bytesOut: outbound?.bytesSent ?? 0,
      packetsReceived: inbound?.packetsReceived,
      packetsLost: inbound?.packetsLost,
    },
  };
}

export function formatMs(ms: number | undefined): string {
  return ms === undefined ? "–" : `${Math.round(ms)} ms`;
}

/** Round-trip time (solid) and jitter (dashed) over the last minute, scaled to the largest value shown. */
export function drawChart(canvas: HTMLCanvasElement, history: QualitySample[]): void {
  const context = canvas.getContext("2d");
  if (!context) return;
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  const values = history.flatMap((s) => [s.roundTripMs ?? 0, s.jitterMs ?? 0]);
  const top = Math.max(20, ...values) * 1.2;
  const line = (pick: (s: QualitySample) => number | undefined, colour: string, dash: number[]) => {
    context.beginPath();
    context.setLineDash(dash);
    context.strokeStyle = colour;
    context.lineWidth = 2;
    let drawing = false;
    history.forEach((sample, i) => {
      const value = pick(sample);
      if (value === undefined) {
        drawing = false; // a gap where the figure is unknown, not a fall to zero
        return;
      }
      const x = (i / (HISTORY - 1)) * width;
      const y = height - (value / top) * height;
      if (drawing) context.lineTo(x, y);
      else context.moveTo(x, y);
      drawing = true;
    });
    context.stroke();
  };
  line((s) => s.roundTripMs, "#1a73e8", []);
  line((s) => s.jitterMs, "#e37400", [4, 3]);
  context.setLineDash([]);
  context.fillStyle = "#5f6368";
  context.font = "11px system-ui, sans-serif";
  context.fillText(`${Math.round(top)} ms`, 4, 12);
}
