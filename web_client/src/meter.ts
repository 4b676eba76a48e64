// Microphone level (RMS of the time-domain signal, 0..1) for the level meter.

export class LevelMeter {
  private context?: AudioContext;
  private frame?: number;

  start(stream: MediaStream, onLevel: (level: number) => void): void {
    this.stop();
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    analyser.fftSize = 1024;
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const tick = () => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const s of samples) sum += s * s;
      // sqrt(mean square) is ~0.7 for a full-scale tone: scale so speech reaches the top third.
      onLevel(Math.min(1, Math.sqrt(sum / samples.length) * 3));
      this.frame = requestAnimationFrame(tick);
    };
    this.context = context;
    void context.resume();
    tick();
  }

  stop(): void {
    if (this.frame !== undefined) cancelAnimationFrame(this.frame);
    this.frame = undefined;
    void this.context?.close();
    this.context = undefined;
  }
}
