// Terminal output to a window in frames: chunks are joined and handed on at most every
// `intervalMs` (one animation frame), at once when `maxBytes` is pending. A node printing
// megabytes per second becomes ~60 messages per second instead of thousands, so the renderer's
// event loop stays free for keystrokes (the same idea as ipc/event-batcher.ts for run events).
export class FrameBatcher {
  private pending: Buffer[] = [];
  private size = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly deliver: (frame: Buffer) => void,
    private readonly intervalMs = 16,
    private readonly maxBytes = 256 * 1024,
  ) {}

  push(chunk: Buffer): void {
    this.pending.push(chunk);
    this.size += chunk.length;
    if (this.size >= this.maxBytes) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.size === 0) return;
    const frame = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.size);
    this.pending = [];
    this.size = 0;
    this.deliver(frame);
  }
}
