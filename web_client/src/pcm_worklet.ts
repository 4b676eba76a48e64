// Audio worklet processors for calls over the WebSocket contract, loaded from this site's own origin
// (`?worker&url` in ws_call.ts), so the strict CSP needs nothing more than script-src 'self'.
//
// "pcm-capture": the microphone at the context's rate -> PCM16 mono at 16 kHz, posted in 20 ms chunks.
// "pcm-playback": PCM16 mono at 24 kHz from the agent -> the context's rate, through a small queue that
// starts once PREBUFFER_MS is there (and again after running dry); {type: "clear"} empties it at once.

// The worklet scope's globals (TypeScript ships no types for them).
declare const sampleRate: number;
declare function registerProcessor(name: string, processor: new (options: any) => unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
  constructor(options?: any);
}

const CAPTURE_RATE = 16_000;
const CAPTURE_CHUNK = CAPTURE_RATE / 50; // 20 ms
const PLAYBACK_RATE = 24_000;
/** Audio queued before playback starts: enough to ride out the socket's arrival jitter on a good network. */
const PREBUFFER_MS = 60;
/** A queue longer than this is trimmed to PREBUFFER_MS: a backlog there is delay the caller hears. */
const MAX_QUEUE_MS = 400;
const REPORT_EVERY_FRAMES = 50; // 128-sample render quanta: about every 130 ms at 48 kHz

function toInt16(sample: number): number {
  const clipped = Math.max(-1, Math.min(1, sample));
  return clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
}

class CaptureProcessor extends AudioWorkletProcessor {
  private readonly ratio = sampleRate / CAPTURE_RATE;
  private phase = 0;
  private sum = 0;
  private count = 0;
  private chunk = new Int16Array(CAPTURE_CHUNK);
  private filled = 0;

  process(inputs: Float32Array[][]): boolean {
    const input = inputs[0]?.[0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      // Each output sample is the mean of the input samples it covers: a box filter against aliasing.
      this.sum += input[i];
      this.count++;
      this.phase += 1;
      if (this.phase < this.ratio) continue;
      this.phase -= this.ratio;
      this.chunk[this.filled++] = toInt16(this.sum / this.count);
      this.sum = 0;
      this.count = 0;
      if (this.filled === CAPTURE_CHUNK) {
        this.port.postMessage(this.chunk.buffer, [this.chunk.buffer]);
        this.chunk = new Int16Array(CAPTURE_CHUNK);
        this.filled = 0;
      }
    }
    return true;
  }
}

class PlaybackProcessor extends AudioWorkletProcessor {
  private queue = new Float32Array(PLAYBACK_RATE); // one second to start with; grows if needed
  private start = 0;
  private end = 0;
  /** Position of the next output sample between queue[start] and queue[start + 1]. */
  private position = 0;
  private readonly step = PLAYBACK_RATE / sampleRate;
  private playing = false;
  private underruns = 0;
  private frames = 0;

  constructor(options?: any) {
    super(options);
    this.port.onmessage = (message: MessageEvent) => {
      if (message.data instanceof ArrayBuffer) this.enqueue(new Int16Array(message.data));
      else if (message.data?.type === "clear") this.clear();
    };
  }

  private get queuedMs(): number {
    return ((this.end - this.start) / PLAYBACK_RATE) * 1000;
  }

  private clear(): void {
    this.start = this.end = 0;
    this.position = 0;
    this.playing = false;
  }

  private enqueue(samples: Int16Array): void {
    if (this.end + samples.length > this.queue.length) {
      const queued = this.queue.subarray(this.start, this.end);
      const larger = new Float32Array(Math.max(this.queue.length, (queued.length + samples.length) * 2));
      larger.set(queued);
      this.queue = larger;
      this.end -= this.start;
      this.start = 0;
    }
    for (let i = 0; i < samples.length; i++) this.queue[this.end++] = samples[i] / 0x8000;
    if (this.queuedMs > MAX_QUEUE_MS) {
      this.start = this.end - Math.round((PREBUFFER_MS / 1000) * PLAYBACK_RATE);
      this.position = 0;
    }
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const output = outputs[0][0];
    if (!this.playing && this.queuedMs >= PREBUFFER_MS) this.playing = true;
    for (let i = 0; i < output.length; i++) {
      if (!this.playing || this.end - this.start < 2) {
        if (this.playing) {
          this.playing = false; // ran dry: wait for PREBUFFER_MS again rather than crackle
          this.underruns++;
        }
        output[i] = 0;
        continue;
      }
      const a = this.queue[this.start];
      const b = this.queue[this.start + 1];
      output[i] = a + (b - a) * this.position; // linear interpolation up to the context's rate
      this.position += this.step;
      while (this.position >= 1 && this.end - this.start >= 2) {
        this.position -= 1;
        this.start++;
      }
    }
    if (++this.frames % REPORT_EVERY_FRAMES === 0) {
      this.port.postMessage({ queuedMs: this.queuedMs, underruns: this.underruns, playing: this.playing });
    }
    return true;
  }
}

registerProcessor("pcm-capture", CaptureProcessor);
registerProcessor("pcm-playback", PlaybackProcessor);
