import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeLifecycle, lastLifecycle, lastDeployRun, recoveryDir } from '../../lifecycle/record';
import { foldRun } from '../../../common/pipeline/fold';
import type { StageState } from '../../../common/pipeline/events';
import { ClusterStatus, ClusterStatusError } from '../../../common/pipeline/status';
import { lastSuccesses, readJournal } from '../../pipeline/journal';
import { activeDeploy, clusterWorkspace, WORKSPACE_LAYOUT } from '../../workspace';
import type { CliCommand, CliIo } from '../command';
import { parseCommandArgs, UnknownOptionError, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';
import { fmtMs } from '../../../common/text/duration';
import { renderTable } from '../../../common/text/table';
import { plural } from '../../../common/text/plural';
import { renderWatcherStatus } from '../../../common/drills/watcher';
import { liveHealthRows } from '../../../common/health/now';
import type { PollTimers } from '../../../common/health/poll';
import { createPoller, HEALTH_POLL_DEFAULT_S, HEALTH_POLL_MIN_S, nextReadDelayS, readFailure } from '../../../common/health/poll';
import type { HealthNow, HealthNowRequest, HubHealthReader } from '../../health/service';
import { clusterHealthNow } from '../../health/service';
import { specTarget } from './lifecycle';

/** What `status --health` reads the hub with; tests inject a reader of a report and a clock. */
export interface StatusDeps {
  reader?: HubHealthReader;
  nowSeconds?: () => number;
  /** `--watch`'s timers and clock (tests drive them; default: the process's). */
  timers?: PollTimers;
}

type JsonErrors = { invalid: (message: string, diagnostics: NonNullable<ClusterStatusError['error']['diagnostics']>) => void };

export const makeStatusCommand = (deps: StatusDeps = {}): CliCommand => ({
  name: 'status',
  summary: 'show the last deploy of a cluster from its journal: stages, nodes, failures, what a rerun will skip',
  usage: 'kubedos status SPEC | --cluster NAME [--json] [--health [--target T] [--watch [--interval S]]]',
  help: [
    'Reads <workspace>/clusters/<name>/journal.jsonl; nothing is contacted.',
    '  --json   the same as JSON (schema: ClusterStatus in common/pipeline/status.ts), also when no deploy is recorded;',
    '           bad usage, an invalid spec or a failure print {"error": …} (ClusterStatusError) on stdout instead',
    '  --health also the cluster\'s health now: the hub\'s health-watcher report read through the guest agent and',
    '           folded per node (agent, wg1 handshake, etcd, converge fingerprint: healthy/degraded/unreachable/unknown);',
    '           needs SPEC; contacts the hypervisor (--target as for stop/start) only when the journal says the',
    '           cluster is deployed and not stopped; says plainly when it cannot be read',
    `  --watch  with --health: read it again and again, one read at a time, every --interval S seconds (default ${HEALTH_POLL_DEFAULT_S},`,
    `           at least ${HEALTH_POLL_MIN_S}), waiting longer while the hub does not answer; a terminal is redrawn, other output`,
    '           gets one table per read after a timestamp line; Ctrl-C stops (exit 0)',
    'Exit status: 0 a deploy is recorded, 1 none is (or the spec is not valid), 2 bad usage.',
  ].join('\n'),
  async run(argv, io) {
    if (!argv.includes('--json')) return runStatus(argv, io, deps);
    // --json: stdout is JSON in every case.
    const json = (e: ClusterStatusError): void => io.out(JSON.stringify(ClusterStatusError.parse(e), null, 2));
    try {
      return await runStatus(argv, io, deps, { invalid: (message, diagnostics) => json({ error: { code: 'invalid-spec', message, diagnostics } }) });
    } catch (err) {
      if (err instanceof UnknownOptionError) json({ error: { code: 'usage', message: err.line('status') } });
      else if (err instanceof UsageError) json({ error: { code: 'usage', message: `${err.message}; usage: ${statusCommand.usage}` } });
      else json({ error: { code: 'failed', message: (err as Error).message ?? String(err) } });
      return err instanceof UsageError ? 2 : 1;
    }
  },
});

export const statusCommand: CliCommand = makeStatusCommand();

async function runStatus(argv: string[], io: CliIo, deps: StatusDeps, json?: JsonErrors): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, { cluster: { type: 'string' }, json: { type: 'boolean' }, health: { type: 'boolean' }, target: { type: 'string' }, watch: { type: 'boolean' }, interval: { type: 'string' } });
  if (values.watch && !values.health) throw new UsageError('--watch needs --health (it re-reads the health now)');
  if (values.watch && values.json) throw new UsageError('--watch prints tables; for JSON, run status --health --json once per read');
  if (values.interval !== undefined && !values.watch) throw new UsageError('--interval goes with --watch');
  const intervalS = values.interval === undefined ? HEALTH_POLL_DEFAULT_S : Number(values.interval);
  if (!Number.isFinite(intervalS) || intervalS < HEALTH_POLL_MIN_S) throw new UsageError(`--interval takes seconds, at least ${HEALTH_POLL_MIN_S} (got ${values.interval})`);
  let cluster = values.cluster;
  let specFile: { path: string; spec: NonNullable<ReturnType<typeof loadSpec>['spec']> } | undefined;
  if (values.health && !positionals[0]) throw new UsageError('--health needs a SPEC (the hub is found from its plan)');
  if (!cluster) {
    const [file] = positionals;
    if (!file) throw new UsageError('give a SPEC or --cluster NAME');
    const loaded = loadSpec(file, io.cwd);
    if (!loaded.spec) {
      if (!json) return reportInvalidSpec(loaded, file, io);
      const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
      json.invalid(loaded.read ? `${file}: not valid (${plural(errors.length, 'error')})` : (errors[0]?.message ?? `${file}: cannot be read`), errors);
      return 1;
    }
    cluster = loaded.spec.metadata.name;
    specFile = { path: loaded.path, spec: loaded.spec };
  }
  if (values.watch && specFile) {
    const req: HealthNowRequest = { specText: readFileSync(specFile.path, 'utf8'), specName: positionals[0] ?? 'SPEC', target: specTarget(specFile.spec, values.target), env: io.env, cwd: io.cwd, signal: io.signal };
    return watchHealth(req, io, deps, intervalS);
  }
  const journalPath = join(clusterWorkspace(cluster, io.env), WORKSPACE_LAYOUT.journal);
  const events = readJournal(journalPath);
  // With --health, the cluster's health now (from the journal alone when it is not running).
  const healthNow: HealthNow | undefined =
    values.health && specFile
      ? await clusterHealthNow(
          { specText: readFileSync(specFile.path, 'utf8'), specName: positionals[0] ?? 'SPEC', target: specTarget(specFile.spec, values.target), env: io.env, cwd: io.cwd, ...(io.signal ? { signal: io.signal } : {}) },
          { ...(deps.reader ? { reader: deps.reader } : {}), ...(deps.nowSeconds ? { nowSeconds: deps.nowSeconds } : {}) },
        )
      : undefined;
  const healthFields = healthNow ? { ...(healthNow.watcher ? { health: healthNow.watcher } : {}), live: healthNow.live } : {};
  const printLive = (): void => {
    if (!healthNow) return;
    if (healthNow.watcher) io.out(`\n${renderWatcherStatus(healthNow.watcher)}`);
    const t = liveHealthRows(healthNow.live);
    io.out(`\n${t.header}`);
    if (t.rows.length) io.out(renderTable(t.columns, t.rows));
  };
  // A destroy that removed the workspace journaled into the cluster's recovery folder.
  const recoveryJournal = join(recoveryDir(cluster, io.env), WORKSPACE_LAYOUT.journal);
  const destroyed = existsSync(journalPath) ? undefined : lastLifecycle(readJournal(recoveryJournal));
  if (destroyed) {
    if (values.json) io.out(JSON.stringify(ClusterStatus.parse({ cluster, journal: recoveryJournal, deployed: false, finished: false, stages: {}, nodes: {}, failures: [], converged: [], lifecycle: destroyed, ...healthFields }), null, 2));
    else {
      io.out(`cluster ${cluster}: ${describeLifecycle(destroyed)} (journal ${recoveryJournal}; the exported trust material is beside it)`);
      printLive();
    }
    return 0;
  }
  const lifecycle = lastLifecycle(events);
  // The last deploy, read the way the progress display and the workbench read it.
  const deployRun = lastDeployRun(events);
  const run = foldRun(deployRun ? events : [], undefined, deployRun ? { onlyRun: deployRun } : {});
  if (!run.runId) {
    if (values.json) io.out(JSON.stringify(ClusterStatus.parse({ cluster, journal: journalPath, deployed: false, finished: false, stages: {}, nodes: {}, failures: [], converged: [], ...(lifecycle ? { lifecycle } : {}), ...healthFields }), null, 2));
    else {
      io.out(lifecycle ? `cluster ${cluster}: ${describeLifecycle(lifecycle)}; no deploy recorded since (${journalPath})` : `no deploy recorded for ${cluster} (${journalPath}); deploy it with: kubedos deploy SPEC`);
      printLive();
    }
    return 1;
  }
  const stageRows = new Map<string, { state: string; duration?: number; reason?: string }>(
    run.order.map((name) => {
      const v = run.stages[name];
      return [name, { state: v?.state ?? 'pending', ...(v?.durationMs !== undefined ? { duration: v.durationMs } : {}), ...(v?.reason !== undefined ? { reason: v.reason } : {}) }];
    }),
  );
  const nodes = new Map(Object.entries(run.nodes).map(([node, n]) => [node, `${n.stage}: ${n.state}${n.message ? ` (${n.message})` : ''}`]));
  const failures = run.failures;
  const done = run.durationMs !== undefined ? { durationMs: run.durationMs } : undefined;
  const last = { runId: run.runId, time: run.startedAt ?? '' };
  const converged = new Map([...lastSuccesses(events)].filter(([, r]) => r.inputHash !== undefined));
  const running = activeDeploy(clusterWorkspace(cluster, io.env));
  if (values.json) {
    const status: ClusterStatus = {
      cluster,
      journal: journalPath,
      deployed: true,
      runId: last.runId,
      ...(last.time ? { startedAt: last.time } : {}),
      finished: Boolean(done),
      ...(done ? { durationMs: done.durationMs } : {}),
      ...(running ? { running: { pid: running.pid, by: running.by } } : {}),
      stages: Object.fromEntries([...stageRows].map(([name, v]) => [name, { state: v.state as StageState, ...(v.duration !== undefined ? { duration: v.duration } : {}), ...(v.reason !== undefined ? { reason: v.reason } : {}) }])),
      nodes: Object.fromEntries(nodes),
      failures,
      converged: [...converged.keys()],
      ...(lifecycle ? { lifecycle } : {}),
      ...healthFields,
    };
    io.out(JSON.stringify(ClusterStatus.parse(status), null, 2));
    return 0;
  }
  const how = done ? `, finished in ${fmtMs(done.durationMs)}` : running ? `, running now (pid ${running.pid}, ${running.by})` : ', did not finish (crash or Ctrl-C): run deploy again to resume';
  if (lifecycle && lifecycle.startedAt >= last.time) io.out(`cluster ${cluster}: ${describeLifecycle(lifecycle)}`);
  io.out(`cluster ${cluster}: last run ${last.runId.slice(0, 8)} started ${last.time}${how}`);
  io.out('');
  io.out(renderTable(['STAGE', 'STATE', 'TIME', 'NOTE'], [...stageRows.entries()].map(([s, v]) => [s, v.state, v.duration !== undefined ? fmtMs(v.duration) : '', v.reason ?? ''])));
  if (nodes.size) {
    io.out('');
    io.out(renderTable(['NODE', 'LAST'], [...nodes.entries()].sort(([a], [b]) => a.localeCompare(b))));
  }
  for (const f of failures) {
    io.out('');
    io.out(`failed: ${f.stage}${f.node ? ` on ${f.node}` : ''}: ${f.message}`);
    if (f.command) io.out(`  command: ${f.command.join(' ')}`);
    if (f.stderrTail) io.out(`  stderr: ${f.stderrTail}`);
    if (f.hint) io.out(`  next: ${f.hint}`);
  }
  if (converged.size) io.out(`\na rerun skips (inputs unchanged): ${[...converged.keys()].join(', ')}`);
  printLive();
  return 0;
}

/** Clears a terminal and puts the cursor home (only written when stdout is one). */
const CLEAR = '\x1b[2J\x1b[H';

/**
 * `status --health --watch`: the health now, read through the one read loop the workbench uses
 * (common/health/poll.ts: one read at a time, back-off while the hub does not answer), printed
 * after each read until Ctrl-C (io.signal), which ends it with exit 0.
 */
function watchHealth(req: HealthNowRequest, io: CliIo, deps: StatusDeps, intervalS: number): Promise<number> {
  const timers: PollTimers = deps.timers ?? { set: (fn, ms) => setTimeout(fn, ms), clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>), now: () => Date.now() };
  const opts = { ...(deps.reader ? { reader: deps.reader } : {}), ...(deps.nowSeconds ? { nowSeconds: deps.nowSeconds } : {}) };
  return new Promise((resolve) => {
    const poller = createPoller<HealthNow>({
      read: () => clusterHealthNow(req, opts),
      failed: (h) => readFailure(h.live) !== undefined,
      intervalS,
      timers,
      onOutcome: (o, at) => {
        const s = poller.snapshot();
        const next = nextReadDelayS(intervalS, s.failures);
        const when = `${new Date(at).toISOString().replace(/\.\d+Z$/, 'Z')} read ${s.reads}, next in ${next} s${s.failures ? ` (${plural(s.failures, 'failed read')} in a row: waiting longer)` : ''}; Ctrl-C stops`;
        const lines = [io.isTty ? `${CLEAR}${when}` : `--- ${when}`];
        if (!o.ok) lines.push(`health now of ${req.specName ?? 'SPEC'}: the read failed: ${o.error.message}`);
        else {
          const t = liveHealthRows(o.value.live);
          lines.push(t.header);
          if (t.rows.length) lines.push(renderTable(t.columns, t.rows));
        }
        io.out(lines.join('\n'));
      },
      start: false,
    });
    const stop = (): void => {
      poller.stop();
      resolve(0);
    };
    if (io.signal.aborted) return stop();
    io.signal.addEventListener('abort', stop, { once: true });
    poller.resume();
  });
}
