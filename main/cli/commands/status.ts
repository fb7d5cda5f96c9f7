import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describeLifecycle, lastLifecycle, lastDeployRun, recoveryDir } from '../../lifecycle/record';
import { foldRun } from '../../../common/pipeline/fold';
import type { StageState } from '../../../common/pipeline/events';
import { ClusterStatus } from '../../../common/pipeline/status';
import { lastSuccesses, readJournal } from '../../pipeline/journal';
import { activeDeploy, clusterWorkspace, WORKSPACE_LAYOUT } from '../../workspace';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';
import { fmtMs } from '../progress';
import { renderTable } from '../../../common/text/table';
import { renderWatcherStatus } from '../../../common/drills/watcher';
import { readHubHealth } from '../../drills/watcher-report';
import { specTarget } from './lifecycle';

export const statusCommand: CliCommand = {
  name: 'status',
  summary: 'show the last deploy of a cluster from its journal: stages, nodes, failures, what a rerun will skip',
  usage: 'kubedos status SPEC | --cluster NAME [--json] [--health [--target T]]',
  help: [
    'Reads <workspace>/clusters/<name>/journal.jsonl; nothing is contacted.',
    '  --json   the same as JSON (schema: ClusterStatus in common/pipeline/status.ts), also when no deploy is recorded',
    '  --health when a deploy is recorded, also read the hub\'s health-watcher report through the guest agent',
    '           (needs SPEC; contacts the hypervisor: --target as for stop/start); says plainly when it cannot be read',
    'Exit status: 0 a deploy is recorded, 1 none is (or the spec is not valid), 2 bad usage.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { cluster: { type: 'string' }, json: { type: 'boolean' }, health: { type: 'boolean' }, target: { type: 'string' } });
    let cluster = values.cluster;
    let specFile: { path: string; spec: NonNullable<ReturnType<typeof loadSpec>['spec']> } | undefined;
    if (values.health && !positionals[0]) throw new UsageError('--health needs a SPEC (the hub is found from its plan)');
    if (!cluster) {
      const [file] = positionals;
      if (!file) throw new UsageError('give a SPEC or --cluster NAME');
      const loaded = loadSpec(file, io.cwd);
      if (!loaded.spec) {
        return reportInvalidSpec(loaded, file, io);
      }
      cluster = loaded.spec.metadata.name;
      specFile = { path: loaded.path, spec: loaded.spec };
    }
    const journalPath = join(clusterWorkspace(cluster, io.env), WORKSPACE_LAYOUT.journal);
    const events = readJournal(journalPath);
    // A destroy that removed the workspace journaled into the cluster's recovery folder.
    const recoveryJournal = join(recoveryDir(cluster, io.env), WORKSPACE_LAYOUT.journal);
    const destroyed = existsSync(journalPath) ? undefined : lastLifecycle(readJournal(recoveryJournal));
    if (destroyed) {
      if (values.json) io.out(JSON.stringify(ClusterStatus.parse({ cluster, journal: recoveryJournal, deployed: false, finished: false, stages: {}, nodes: {}, failures: [], converged: [], lifecycle: destroyed }), null, 2));
      else io.out(`cluster ${cluster}: ${describeLifecycle(destroyed)} (journal ${recoveryJournal}; the exported trust material is beside it)`);
      return 0;
    }
    const lifecycle = lastLifecycle(events);
    // The last deploy, read the way the progress display and the workbench read it.
    const deployRun = lastDeployRun(events);
    const run = foldRun(deployRun ? events : [], undefined, deployRun ? { onlyRun: deployRun } : {});
    if (!run.runId) {
      if (values.json) io.out(JSON.stringify(ClusterStatus.parse({ cluster, journal: journalPath, deployed: false, finished: false, stages: {}, nodes: {}, failures: [], converged: [], ...(lifecycle ? { lifecycle } : {}) }), null, 2));
      else io.out(lifecycle ? `cluster ${cluster}: ${describeLifecycle(lifecycle)}; no deploy recorded since (${journalPath})` : `no deploy recorded for ${cluster} (${journalPath}); deploy it with: kubedos deploy SPEC`);
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
    const health = values.health && specFile ? await readHubHealth({ specPath: specFile.path, target: specTarget(specFile.spec, values.target), env: io.env, cwd: io.cwd, ...(io.signal ? { signal: io.signal } : {}) }) : undefined;
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
        ...(health ? { health } : {}),
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
    if (health) io.out(`\n${renderWatcherStatus(health)}`);
    return 0;
  },
};
