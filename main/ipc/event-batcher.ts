// Collects pipeline events and hands them on in batches: at most every `intervalMs`, at once
// when `maxBatch` is reached or the run ends. Keeps the renderer smooth at 10,000 log lines/s.
import type { PipelineEvent } from '../../common/pipeline/events';

export class EventBatcher {
  private queue: PipelineEvent[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly deliver: (events: PipelineEvent[]) => void,
    private readonly intervalMs = 40,
    private readonly maxBatch = 5000,
  ) {}

  push(event: PipelineEvent): void {
    this.queue.push(event);
    if (event.type === 'done' || event.type === 'failed' || this.queue.length >= this.maxBatch) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.deliver(batch);
  }
}
