// Property-based fuzzing (fast-check, fixed seed, bounded runs) of the boundaries an attacker
// feeds: the spec parser, shell quoting (evaluated by a real sh), QEMU option strings, qm
// property strings, and the bridge's frame decoder (over a real WebSocket). Each property
// counts "escapes" (an input that gets past the wall); every count must be 0. The counts are
// printed so the run can be quoted.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VmShape } from '../../common/plan/schema';
import { Diagnostic, parseSpec } from '../../common/spec/index';
import { TEMPLATES } from '../../common/spec/templates/index';
import { startBridge } from '../../main/ipc/ws-bridge';
import type { Bridge } from '../../main/ipc/ws-bridge';
import { ownershipTags } from '../../main/substrate/provision';
import { QemuLocalDriver } from '../../main/substrate/qemu-local';
import { parsePropertyString, qmCreate } from '../../main/substrate/qm';
import { remoteCommand, shellQuote } from '../../main/substrate/shell';
import { qemuOptionValue } from '../../main/substrate/validate';
import { lab3Plan } from '../substrate/helpers';
import { openPrintedUrl } from './bridge-client';

const SEED = 20261216;
const counts: Record<string, { cases: number; escapes: number; accepted?: number }> = {};
const tally = (name: string, cases: number, escapes: number, accepted?: number): void => {
  counts[name] = { cases, escapes, ...(accepted !== undefined ? { accepted } : {}) };
};
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** QEMU's option parser: split on single commas (",," is a literal comma), then key=value. */
function qemuOptions(value: string): [string, string][] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    if (value[i] === ',' && value[i + 1] === ',') {
      cur += ',';
      i++;
    } else if (value[i] === ',') {
      parts.push(cur);
      cur = '';
    } else cur += value[i];
  }
  parts.push(cur);
  return parts.map((p) => {
    const eq = p.indexOf('=');
    return eq < 0 ? ['', p] : [p.slice(0, eq), p.slice(eq + 1)];
  });
}

/** Evaluates shell text with a real sh and returns the words it printed (NUL-separated). */
function shWords(script: string): string[] {
  const r = spawnSync('sh', ['-c', script], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`sh failed: ${r.stderr}`);
  return r.stdout.split('\u0000').slice(0, -1);
}

describe('security: property-based fuzzing (fast-check, fixed seed)', () => {
  afterAll(() => {
    console.log(`fuzz seed ${SEED}:\n${Object.entries(counts).map(([k, c]) => `  ${k}: ${c.cases} cases${c.accepted !== undefined ? ` (${c.accepted} accepted by the validators)` : ''}, ${c.escapes} escapes`).join('\n')}`);
  });

  it('spec parser: never throws; every diagnostic is well-formed; an accepted stateDir holds no "," or control character', () => {
    let cases = 0;
    let escapes = 0;
    const template = TEMPLATES['lab-3'].text;
    const arbitraryText = fc.oneof(
      fc.string({ maxLength: 400 }),
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      // Template with one line replaced or spliced: close to valid, so deep paths are reached.
      fc.tuple(fc.nat(), fc.string({ maxLength: 60 })).map(([n, s]) => {
        const lines = template.split('\n');
        lines[n % lines.length] = s;
        return lines.join('\n');
      }),
      fc.string({ maxLength: 80 }).map((s) => template.replace(/(\n\s+qemu:\n)/, `$1      stateDir: ${JSON.stringify(s)}\n`)),
    );
    fc.assert(
      fc.property(arbitraryText, (text) => {
        cases++;
        let r;
        try {
          r = parseSpec(text);
        } catch {
          escapes++;
          return false;
        }
        const bad = r.diagnostics.some((d) => !Diagnostic.safeParse(d).success);
        const dir = r.spec?.spec.substrate.qemu?.stateDir;
        const leaked = dir !== undefined && (dir.includes(',') || CONTROL.test(dir) || dir.includes('\t'));
        if (bad || leaked) escapes++;
        return !bad && !leaked;
      }),
      { seed: SEED, numRuns: 1500 },
    );
    tally('spec parser', cases, escapes);
    expect(escapes).toBe(0);
  });

  it('shell quoting: sh evaluates every quoted word back to itself; control characters are refused', () => {
    let cases = 0;
    let escapes = 0;
    const words = fc.array(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }), fc.constantFrom("'", '"', '$(id)', '`id`', '\\', '; rm -rf /', '*', '~', '-n', '', ' ', '\t', '$HOME', '!!', '\u00e9')), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(fc.array(words, { minLength: 1, maxLength: 25 }), (batch) => {
        const safe = batch.map((argv) => argv.filter((w) => !CONTROL.test(w))).filter((a) => a.length > 0);
        for (const argv of batch) for (const w of argv) if (CONTROL.test(w)) {
          cases++;
          let threw = false;
          try {
            shellQuote(w);
          } catch {
            threw = true;
          }
          if (!threw) escapes++;
        }
        if (safe.length === 0) return true;
        // printf '%s\0' WORD... for every argv, one sh per batch.
        const script = safe.map((argv) => `printf '%s\\0' ${remoteCommand(argv)}`).join('\n');
        const got = shWords(script);
        const want = safe.flat();
        cases += want.length;
        for (let i = 0; i < Math.max(got.length, want.length); i++) if (got[i] !== want[i]) escapes++;
        return got.length === want.length && got.every((g, i) => g === want[i]);
      }),
      { seed: SEED, numRuns: 60 },
    );
    tally('shell quoting (words through sh)', cases, escapes);
    expect(escapes).toBe(0);
  });

  it('QEMU options: an escaped value is one value; qemuArgv option strings never gain a key from the state dir', () => {
    let cases = 0;
    let escapes = 0;
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (value) => {
        cases++;
        let escaped: string;
        try {
          escaped = qemuOptionValue(value);
        } catch {
          if (!CONTROL.test(value) && !value.includes('\t')) escapes++;
          return true;
        }
        const opts = qemuOptions(`file=${escaped},if=none`);
        const ok = opts.length === 2 && opts[0]?.[0] === 'file' && opts[0]?.[1] === value && opts[1]?.[0] === 'if';
        if (!ok) escapes++;
        return ok;
      }),
      { seed: SEED, numRuns: 2000 },
    );
    const p = lab3Plan();
    const node = p.nodes[0];
    if (!node) throw new Error('lab-3 has nodes');
    let accepted = 0;
    const expected = new Map<string, string[]>([['-drive', ['if', 'unit', 'format', 'readonly', 'file', 'id', 'discard', 'media']], ['-chardev', ['', 'id', 'path', 'server', 'wait', 'logfile', 'logappend']], ['-netdev', ['', 'id', 'server', 'addr.type', 'addr.path', 'restrict', 'net', 'guestfwd']]]);
    fc.assert(
      fc.property(fc.string({ maxLength: 50 }), (tail) => {
        cases++;
        let d: QemuLocalDriver;
        try {
          d = new QemuLocalDriver({ stateDir: `/tmp/kd/${tail}`, ownership: { tags: ownershipTags(p), vmidRange: p.substrate.vmidRange }, accel: 'tcg', hostServices: [{ guestPort: 8080, hostPort: 8080 }] });
        } catch {
          return true; // refused as a path: nothing to escape from
        }
        accepted++;
        const argv = d.qemuArgv(node.vm, undefined, 'tcg,thread=multi');
        for (let i = 0; i < argv.length - 1; i++) {
          const allowed = expected.get(argv[i] as string);
          if (!allowed) continue;
          const keys = qemuOptions(argv[i + 1] as string).map(([k]) => k);
          if (keys.some((k) => !allowed.includes(k)) || new Set(keys).size !== keys.length) {
            escapes++;
            return false;
          }
        }
        return true;
      }),
      { seed: SEED, numRuns: 800 },
    );
    tally('QEMU option values + qemuArgv with fuzzed stateDir', cases, escapes, accepted);
    expect(escapes).toBe(0);
  });

  it('qm: fuzzed VM names, tags, bridges, pools and CPU types are refused or stay inside their property', () => {
    let cases = 0;
    let escapes = 0;
    let qmAccepted = 0;
    const base = lab3Plan().nodes[0]?.vm as VmShape;
    // Mostly plausible values (so whole shapes get through), sometimes anything, sometimes an injection.
    const field = (plausible: fc.Arbitrary<string>): fc.Arbitrary<string> =>
      fc.oneof({ weight: 8, arbitrary: plausible }, { weight: 1, arbitrary: fc.string({ maxLength: 24 }) }, { weight: 1, arbitrary: fc.constantFrom('x,bridge=evil', 'a;b', "a'b", 'a=b', 'a b', '$(id)', 'vmbr0\n--delete 1') });
    const name = field(fc.stringMatching(/^[a-z][a-z0-9-]{0,12}[a-z0-9]$/));
    const tag = field(fc.stringMatching(/^[a-z0-9_][a-z0-9_+.-]{0,12}$/));
    const bridge = field(fc.stringMatching(/^[a-z][a-z0-9_.]{0,10}$/));
    const pool = field(fc.stringMatching(/^[a-z][a-z0-9_.-]{0,12}$/));
    const cpu = field(fc.constantFrom('host', 'x86-64-v2-AES', 'kvm64', 'max'));
    fc.assert(
      fc.property(name, tag, bridge, pool, cpu, (name, tag, bridge, pool, cpu) => {
        cases++;
        const shape: VmShape = structuredClone(base);
        shape.name = name;
        shape.tags = [tag];
        shape.cpu.type = cpu;
        shape.disks = shape.disks.map((x) => ({ ...x, pool }));
        shape.nics = shape.nics.map((n) => ({ ...n, bridge }));
        let argv: string[];
        try {
          argv = qmCreate(shape, undefined);
        } catch {
          return true;
        }
        qmAccepted++;
        const net = parsePropertyString(argv[argv.indexOf('--net0') + 1] as string);
        const scsi = parsePropertyString(argv[argv.indexOf('--scsi0') + 1] as string);
        const ok =
          Object.keys(net).every((k) => ['virtio', 'bridge', 'firewall', 'tag'].includes(k)) &&
          net.bridge === bridge &&
          Object.keys(scsi).every((k) => ['', 'discard', 'iothread'].includes(k)) &&
          argv[argv.indexOf('--name') + 1] === name &&
          shWords(`printf '%s\\0' ${remoteCommand(argv)}`).join('\u0000') === argv.join('\u0000');
        if (!ok) escapes++;
        return ok;
      }),
      { seed: SEED, numRuns: 600 },
    );
    tally('qm property strings + remote command', cases, escapes, qmAccepted);
    expect(escapes).toBe(0);
  });

  describe('bridge frame decoder (real WebSocket)', () => {
    let root: string;
    let bridge: Bridge;
    let ws: WebSocket;
    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), 'kubedos-sec-fuzz-'));
      mkdirSync(join(root, 'renderer'));
      writeFileSync(join(root, 'renderer/index.html'), '<!doctype html>');
      bridge = await startBridge({ rendererDir: join(root, 'renderer'), workspace: join(root, 'ws') });
      const cookie = await openPrintedUrl(bridge.url);
      ws = new WebSocket(`ws://127.0.0.1:${bridge.port}/bridge`, { origin: `http://127.0.0.1:${bridge.port}`, headers: { cookie: cookie ?? '' } });
      await new Promise((r, j) => (ws.once('open', r), ws.once('error', j)));
    });
    afterAll(async () => {
      ws?.close();
      await bridge?.close();
      rmSync(root, { recursive: true, force: true });
    });

    it('every frame gets exactly one reply, malformed ones an error, and the socket stays up', async () => {
      const safeChannels = ['app.info', 'spec.parse', 'spec.templates', 'spec.template', 'spec.list', 'spec.open', 'plan.compute', 'pipeline.cancel', 'nope', ''];
      const frame = fc.oneof(
        fc.string({ maxLength: 200 }),
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        fc.record({ kind: fc.oneof(fc.constant('request'), fc.string({ maxLength: 8 })), id: fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 4 }), fc.constant(null)), channel: fc.oneof(fc.constantFrom(...safeChannels), fc.string({ maxLength: 70 })), payload: fc.jsonValue({ maxDepth: 3 }) }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
      );
      const frames = fc.sample(frame, { seed: SEED, numRuns: 1500 });
      const replies: { id: number; error?: unknown; result?: unknown }[] = [];
      ws.on('message', (d) => {
        const f = JSON.parse(d.toString()) as { kind: string; id: number; error?: unknown; result?: unknown };
        if (f.kind === 'reply') replies.push(f);
      });
      for (const f of frames) ws.send(f);
      await expect.poll(() => replies.length, { timeout: 30_000, interval: 50 }).toBeGreaterThanOrEqual(frames.length);
      let escapes = 0;
      // A malformed frame (not a strict request object) must be answered with an error.
      const malformed = frames.filter((f) => {
        try {
          const v = JSON.parse(f) as Record<string, unknown>;
          return !(v && typeof v === 'object' && !Array.isArray(v) && v.kind === 'request' && Number.isSafeInteger(v.id) && (v.id as number) >= 0 && typeof v.channel === 'string' && (v.channel as string).length <= 64 && Object.keys(v).every((k) => ['kind', 'id', 'channel', 'payload'].includes(k)));
        } catch {
          return true;
        }
      }).length;
      const errors = replies.filter((r) => r.error !== undefined).length;
      if (replies.length !== frames.length) escapes += Math.abs(replies.length - frames.length);
      if (errors < malformed) escapes += malformed - errors;
      expect(ws.readyState).toBe(WebSocket.OPEN);
      tally('bridge frames', frames.length, escapes);
      expect(escapes).toBe(0);
    });
  });
});
