// The node terminal beside plain OpenSSH, on the same path (this machine → hub over wg1 → node
// over wg1, in the namespace lab of e2e/terminal/): keystroke echo latency (one key at a time,
// the node's tty echoes it; p50/p95 of ECHO_SAMPLES) and output throughput (64 MiB from the node,
// first byte to last). Goals: echo p95 ≤ 50 ms, ≥ 10 MB/s. Numbers, not pass/fail. Needs root.
// Run: node bin/run-ts.mjs bench/terminal.bench.ts   (or npm run bench:terminal)
// OpenSSH is started directly here (a pty session fed key by key is not what the engine's runner is for).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderTable } from '../common/text/table';
import { readOpsPrivateKey } from '../main/build/keys';
import { requireRoot } from '../main/lab/harness';
import { openNodeTerminal, terminalRoute } from '../main/terminal/index';
import { createTerminalLab } from '../e2e/terminal/terminal-lab';

requireRoot('bench/terminal.bench.ts');
const ECHO_SAMPLES = Number(process.env.TERMINAL_BENCH_SAMPLES ?? 200);
const BYTES = 64 * 1024 * 1024;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

/** Sends one key, waits for its echo, ECHO_SAMPLES times; keys cycle through a-z. */
async function echoLatencies(write: (s: string) => void, onData: (fn: (text: string) => void) => void): Promise<number[]> {
  const out: number[] = [];
  let waiting: { key: string; resolve: () => void } | undefined;
  let seen = '';
  onData((text) => {
    seen += text;
    if (waiting && seen.includes(waiting.key)) {
      const w = waiting;
      waiting = undefined;
      w.resolve();
    }
  });
  for (let i = 0; i < ECHO_SAMPLES; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    seen = '';
    const t0 = performance.now();
    await new Promise<void>((resolve) => {
      waiting = { key, resolve };
      write(key);
    });
    out.push(performance.now() - t0);
  }
  return out;
}

const t = await createTerminalLab();
const rows: string[][] = [];
try {
  const route = terminalRoute(t.workspace, t.plan, 'w-1');
  // OpenSSH with the same key, user, pins and jump.
  const key = join(t.dir, 'ops-key');
  writeFileSync(key, await readOpsPrivateKey(t.spec.metadata.name, t.env), { mode: 0o600 });
  writeFileSync(join(t.dir, 'known_hosts'), `${route.hub.host} ${route.hub.hostKey}\n${route.target!.host} ${route.target!.hostKey}\n`, { mode: 0o600 });
  const config = join(t.dir, 'ssh_config');
  writeFileSync(
    config,
    [
      `Host hub\n  HostName ${route.hub.host}`,
      `Host node\n  HostName ${route.target!.host}\n  ProxyJump hub`,
      `Host *\n  User ops\n  IdentityFile ${key}\n  IdentitiesOnly yes\n  UserKnownHostsFile ${join(t.dir, 'known_hosts')}\n  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );

  // ---- echo: engine
  const engineListeners: ((s: string) => void)[] = [];
  const engineShell = await openNodeTerminal({ spec: t.spec, node: 'w-1', env: t.env, size: { cols: 80, rows: 24 }, transcript: false, command: 'cat > /dev/null', onData: (b) => engineListeners.forEach((f) => f(b.toString())) });
  await new Promise((r) => setTimeout(r, 300));
  const engineEcho = await echoLatencies((s) => engineShell.session.write(s), (fn) => engineListeners.push(fn));
  engineShell.session.close();
  // ---- echo: OpenSSH
  const ssh = spawn('ssh', ['-F', config, '-tt', 'node', 'cat > /dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const sshListeners: ((s: string) => void)[] = [];
  ssh.stdout.on('data', (b: Buffer) => sshListeners.forEach((f) => f(b.toString())));
  // Wait until the remote tty is there (it echoes a first key).
  await new Promise<void>((resolve) => {
    const poll = setInterval(() => ssh.stdin.write('.'), 200);
    sshListeners.push((text) => {
      if (text.includes('.')) {
        clearInterval(poll);
        resolve();
      }
    });
  });
  await new Promise((r) => setTimeout(r, 300));
  sshListeners.length = 0;
  const sshEcho = await echoLatencies((s) => ssh.stdin.write(s), (fn) => sshListeners.push(fn));
  ssh.kill('SIGTERM');

  // ---- throughput: engine (first byte → last byte)
  let first = 0;
  let bytes = 0;
  const tp = await openNodeTerminal({
    spec: t.spec,
    node: 'w-1',
    env: t.env,
    transcript: false,
    command: `head -c ${BYTES} /dev/zero`,
    onData: (b) => {
      if (!first) first = performance.now();
      bytes += b.length;
    },
  });
  await tp.session.exited;
  const engineMBs = bytes / 1e6 / ((performance.now() - first) / 1000);
  const engineBytes = bytes;
  // ---- throughput: OpenSSH
  const sshTp = await new Promise<{ mbs: number; bytes: number }>((resolve, reject) => {
    let f = 0;
    let n = 0;
    const p = spawn('ssh', ['-F', config, 'node', `head -c ${BYTES} /dev/zero`], { stdio: ['ignore', 'pipe', 'inherit'] });
    p.stdout.on('data', (b: Buffer) => {
      if (!f) f = performance.now();
      n += b.length;
    });
    p.on('error', reject);
    p.on('close', () => resolve({ mbs: n / 1e6 / ((performance.now() - f) / 1000), bytes: n }));
  });
  const fmt = (x: number): string => x.toFixed(1);
  rows.push(['kubedos (ssh2, hub → node over wg1)', fmt(pct(engineEcho, 50)), fmt(pct(engineEcho, 95)), fmt(engineMBs), String(engineBytes)]);
  rows.push(['OpenSSH ssh -J (same path)', fmt(pct(sshEcho, 50)), fmt(pct(sshEcho, 95)), fmt(sshTp.mbs), String(sshTp.bytes)]);
} finally {
  t.destroy();
}
console.log(`echo: ${ECHO_SAMPLES} keys, one at a time; throughput: ${BYTES / 1024 / 1024} MiB, first byte to last`);
console.log(renderTable(['CLIENT', 'ECHO P50 MS', 'ECHO P95 MS', 'OUTPUT MB/S', 'BYTES'], rows));
