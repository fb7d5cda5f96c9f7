// The USB dialog's state: the write or verify in flight (its last usb.progress event), and the
// outcome of the last one. A write that failed or was stopped is kept as such: its stick is never
// shown as good (there is no receipt for it).
import { createStore } from 'zustand/vanilla';
import type { UsbProgressEvent, UsbVerifyOutcome, UsbWriteOutcome } from '../../../common/contract/index';

export type UsbOutcome =
  | { kind: 'written'; device: string; result: UsbWriteOutcome }
  | { kind: 'verified'; device: string; result: UsbVerifyOutcome }
  /** Refused before anything was written (the rule, the size, the artifact or bundle). */
  | { kind: 'refused'; op: 'write' | 'verify'; device: string; message: string }
  | { kind: 'failed'; op: 'write' | 'verify'; device: string; message: string; stopped: boolean };

export interface UsbState {
  busy?: { op: 'write' | 'verify'; device: string; stopping: boolean };
  progress?: UsbProgressEvent;
  outcome?: UsbOutcome;
  start(op: 'write' | 'verify', device: string): void;
  stopping(): void;
  ingest(e: UsbProgressEvent): void;
  end(outcome: UsbOutcome): void;
  clear(): void;
}

export const createUsbStore = () =>
  createStore<UsbState>()((set, get) => ({
    start: (op, device) => set({ busy: { op, device, stopping: false }, progress: undefined, outcome: undefined }),
    stopping: () => {
      const b = get().busy;
      if (b) set({ busy: { ...b, stopping: true } });
    },
    ingest: (e) => {
      const b = get().busy;
      if (b && b.op === e.op && b.device === e.device) set({ progress: e });
    },
    end: (outcome) => set({ busy: undefined, outcome }),
    clear: () => set({ outcome: undefined, progress: undefined }),
  }));

export const usbStore = createUsbStore();

/** "2:05" from seconds. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** The progress line as the dialog shows it (the CLI's words). */
export function progressText(p: UsbProgressEvent): { label: string; percent: number } {
  const done = p.phase === 'verify' ? p.verified : p.phase === 'done' ? p.total : p.written;
  const percent = p.total ? Math.min(100, Math.floor((100 * done) / p.total)) : 0;
  const eta = p.etaSeconds !== undefined ? ` · ${clock(p.etaSeconds)} left` : '';
  if (p.phase === 'probe') return { label: "checking the stick's real capacity…", percent: 0 };
  if (p.phase === 'done') return { label: 'done', percent: 100 };
  const what = p.op === 'verify' ? 'reading the stick back' : p.phase === 'write' ? 'writing (each range read back as it goes)' : 'reading back the last range';
  return { label: `${what} · ${percent} % · ${p.mbPerSec.toFixed(1)} MB/s${eta}`, percent };
}
