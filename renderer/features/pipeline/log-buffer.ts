// Log lines of pipeline runs, outside React: 10,000 lines/s must not re-render components.
// The terminal subscribes and writes what arrives in one batch per animation frame.
export interface LogLine {
  seq: number;
  runId: string;
  stage: string;
  node?: string;
  stream: 'stdout' | 'stderr' | 'info' | 'warn';
  line: string;
  time: string;
}

export class LogBuffer {
  private lines: LogLine[] = [];
  private readonly listeners = new Set<(added: readonly LogLine[], reset: boolean) => void>();
  /** Lines dropped from the front when the buffer was full. */
  dropped = 0;

  constructor(readonly capacity = 200_000) {}

  append(added: readonly LogLine[]): void {
    if (added.length === 0) return;
    this.lines.push(...added);
    const over = this.lines.length - this.capacity;
    if (over > 0) {
      this.lines = this.lines.slice(over);
      this.dropped += over;
    }
    for (const l of this.listeners) l(added, false);
  }

  clear(): void {
    this.lines = [];
    this.dropped = 0;
    for (const l of this.listeners) l([], true);
  }

  all(): readonly LogLine[] {
    return this.lines;
  }

  get size(): number {
    return this.lines.length;
  }

  subscribe(listener: (added: readonly LogLine[], reset: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}

export interface LogFilter {
  stage?: string;
  node?: string;
}

export function matches(line: LogLine, filter: LogFilter): boolean {
  return (filter.stage === undefined || line.stage === filter.stage) && (filter.node === undefined || line.node === filter.node);
}

const COLORS: Record<LogLine['stream'], string> = { stdout: '', stderr: '\x1b[31m', info: '\x1b[36m', warn: '\x1b[33m' };

/** One terminal line: time, stage, node, text; stderr red, warnings yellow. */
export function formatLogLine(l: LogLine): string {
  const time = l.time.slice(11, 23);
  const where = l.node ? `${l.stage}/${l.node}` : l.stage;
  const color = COLORS[l.stream];
  // Control characters (escape sequences from a remote command) must not drive the terminal.
  // eslint-disable-next-line no-control-regex
  const text = l.line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
  return `\x1b[90m${time}\x1b[0m \x1b[35m${where.padEnd(18)}\x1b[0m ${color}${text}${color ? '\x1b[0m' : ''}`;
}
