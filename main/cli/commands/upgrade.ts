import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { plan } from '../../../common/plan/plan';
import type { Plan } from '../../../common/plan/index';
import { takeEtcdSnapshot } from '../../stages/seal-snapshot';
import { resealForRunningBuild } from '../../upgrade/reseal';
import { renderPlan } from '../../../common/upgrade/waves';
import { diffIsEmpty, diffSummary, renderDiff } from '../../build/darksite/pins';
import { renderPayloadDiff } from '../../upgrade/sbom-diff';
import { builtFrom, deployedBuildDir, readBuildRef, runningBuildDir, upgradePreflight } from '../../upgrade/preflight';
import type { ClusterSpec } from '../../../common/spec/index';
import { UPGRADE_CHANNELS, UpgradeChannel } from '../../../common/spec/schema';
import type { WindowState } from '../../../common/upgrade/policy';
import { upgradePolicyOf, windowAt } from '../../../common/upgrade/policy';
import type { BuildRef } from '../../../common/upgrade/agent';
import type { UpgradeHealth, Wave } from '../../../common/upgrade/waves';
import { MANIFEST_FILE } from '../../build/attest';
import { substrateFor } from '../../substrate/factory';
import type { SubstrateDriver } from '../../substrate/driver';
import { targetOf } from '../../target';
import type { ApplyOutcome } from '../../upgrade/apply-run';
import { applyEventLine } from '../../../common/upgrade/progress';
import { upgradeWaves } from '../../upgrade/preflight';
import { runUpgradeService, specNotAb, vmConverge, VmNodeOps } from '../../upgrade/vm-ops';
import { clusterReplaceOps } from '../../upgrade/replace-ops';
import { excuseMidReplacement, midReplacement, observeUpgradeHealth } from '../../upgrade/live-health';
import { readUpgradeRecord, upgradeRecordPath } from '../../upgrade/apply-run';
import type { SpecSource } from '../../stages/validate';
import { clusterWorkspace } from '../../workspace';
import { sha256Hex } from '../../../common/canonical';
import type { CliCommand, CliIo } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';

/** Lines of a diff shown on the terminal; --json carries every one. */
const DIFF_SHOWN = 30;

/** How the apply loop's events are printed (one line each, on stderr). */
/** The apply loop's end as an exit status: 0 done, 1 stopped or refused, 130 cancelled. */
function report(what: string, end: ApplyOutcome, io: CliIo): number {
  if (end.kind === 'done') {
    io.out(`${what}: ${end.message}`);
    return 0;
  }
  io.err(`${what} ${end.kind === 'refuse' ? 'refused' : end.kind === 'cancelled' ? 'cancelled' : 'stopped'}: ${end.message}`);
  return end.kind === 'cancelled' ? 130 : 1;
}

/**
 * The substrate the deploy used, opened on first use and closed once by the command: the live
 * health look and the run share one driver (on Proxmox, one SSH session).
 */
interface SubstrateSession {
  readonly plan: Plan;
  /** The target (--target, else the spec's), read where it is used: a --target that does not parse fails there. */
  target(): ReturnType<typeof targetOf>;
  driver(): SubstrateDriver;
  close(): Promise<void>;
}

function substrateSession(spec: ClusterSpec, p: Plan, targetArg: string | undefined, io: CliIo): SubstrateSession {
  let opened: SubstrateDriver | undefined;
  const target = (): ReturnType<typeof targetOf> => targetOf(spec, targetArg);
  return {
    plan: p,
    target,
    driver: () => (opened ??= substrateFor({ spec, plan: p, target: target(), workspace: clusterWorkspace(spec.metadata.name, io.env), env: io.env, cwd: io.cwd }).driver),
    close: async () => {
      await opened?.close();
    },
  };
}

/** Runs the loop with the VM node operations (and, for replace waves, the VM replacements) on the session's substrate. */
async function applyOnVms(o: { spec: ClusterSpec; source: SpecSource; specPath: string; waves: Wave[]; from: BuildRef; to?: BuildRef & { keyid: string }; allowDowngrade?: boolean; allowDestroy?: boolean; maintenanceWindow?: (now: number) => WindowState; artifactDir?: string; substrate: SubstrateSession; io: CliIo }): Promise<ApplyOutcome> {
  const { spec, io } = o;
  const p = o.substrate.plan;
  const target = o.substrate.target();
  const driver = o.substrate.driver();
  // Ansible's log of each node's converge, indented under the node's converge event.
  const log = (line: string): void => io.err(`  ${line}`);
  const converge = vmConverge({ spec, plan: p, driver, env: io.env, log });
  const ops = new VmNodeOps({ spec, plan: p, driver, env: io.env, artifactDir: o.artifactDir ?? '', converge });
  const replace = clusterReplaceOps({ spec, plan: p, driver, target, source: o.source, specPath: o.specPath, env: io.env, ...(o.artifactDir ? { artifactDir: o.artifactDir } : {}), metrics: (node, signal) => ops.metrics(node, signal), by: `kubedos upgrade ${o.source.name}`, log });
  // Once a run completes, the recovery bundle is sealed again for the build every node runs, with a fresh etcd snapshot.
  const reseal = { snapshot: (sp: Plan) => takeEtcdSnapshot(driver, sp, io.signal) };
  try {
    return await runUpgradeService({ spec, waves: o.waves, from: o.from, ...(o.to ? { to: { version: o.to.version, digest: o.to.digest } } : {}), ...(o.to && o.artifactDir ? { artifact: { dir: o.artifactDir, keyid: o.to.keyid } } : {}), specText: o.source.text, reseal, ...(o.allowDowngrade ? { allowDowngrade: true } : {}), ...(o.allowDestroy ? { allowDestroy: true } : {}), ...(o.maintenanceWindow ? { maintenanceWindow: o.maintenanceWindow } : {}), ops, replace, env: io.env, signal: io.signal, onEvent: (e) => io.err(applyEventLine(e)) });
  } finally {
    await ops.close();
  }
}

/** `--reseal`: the recovery bundle sealed for the build the cluster runs (when a completed run could not reseal it). */
async function resealCommand(spec: ClusterSpec, source: SpecSource, targetArg: string | undefined, io: CliIo): Promise<number> {
  const cluster = spec.metadata.name;
  const what = `upgrade --reseal ${cluster}`;
  let buildDir: string;
  try {
    buildDir = runningBuildDir(cluster, io.env);
  } catch (err) {
    io.err(`${what} refused: ${(err as Error).message}`);
    return 1;
  }
  if (!existsSync(join(buildDir, MANIFEST_FILE))) {
    io.err(`${what} refused: no sealed deploy (${join(buildDir, MANIFEST_FILE)}): kubedos deploy SPEC seals one`);
    return 1;
  }
  const { version, manifest } = readBuildRef(buildDir);
  // The substrate is opened only for the snapshot, once every file check passed (with the plan of the spec sealed).
  let substrate: SubstrateSession | undefined;
  const snapshot = (sp: Plan): ReturnType<typeof takeEtcdSnapshot> => {
    substrate ??= substrateSession(spec, sp, targetArg, io);
    return takeEtcdSnapshot(substrate.driver(), sp, io.signal);
  };
  try {
    // SPEC's text when it is the spec the running build was made from; else the kept copy's.
    const res = await resealForRunningBuild({ cluster, env: io.env, buildDir, version, ...(builtFrom(manifest) === sha256Hex(source.text) ? { specText: source.text } : {}), snapshot, log: (line) => io.err(applyEventLine({ step: 'seal', detail: line })) });
    if (res.kind === 'failed') {
      io.err(`${what}: ${res.line}`);
      return 1;
    }
    io.out(`${what}: ${res.line}`);
    return 0;
  } finally {
    await substrate?.close();
  }
}

/** How the command looks at the deployed cluster before planning the waves (a test gives its own). */
export interface UpgradeCommandDeps {
  /** One look at the deployed cluster; `n1` is N+1 as the preflight verified it; `driver` opens the command's substrate. */
  observeHealth(o: { spec: ClusterSpec; plan: Plan; n1: BuildRef; driver: () => SubstrateDriver; io: CliIo }): Promise<UpgradeHealth>;
}

/** One look through the guest agents of the substrate the deploy used (live-health.ts). */
async function observeThroughSubstrate(o: { spec: ClusterSpec; plan: Plan; n1: BuildRef; driver: () => SubstrateDriver; io: CliIo }): Promise<UpgradeHealth> {
  const seen = await observeUpgradeHealth({ spec: o.spec, plan: o.plan, driver: o.driver() });
  // A rerun of a stopped replace-based upgrade: the nodes it left mid-replacement are its own doing.
  return excuseMidReplacement(seen, midReplacement(readUpgradeRecord(upgradeRecordPath(o.spec.metadata.name, o.io.env)), o.n1));
}

export const upgradeCommand: CliCommand = makeUpgradeCommand({ observeHealth: observeThroughSubstrate });

export function makeUpgradeCommand(deps: UpgradeCommandDeps): CliCommand {
  return {
    name: 'upgrade',
    summary: 'move the cluster from its build N to N+1 (checks, package diff, waves, then each node\'s passive A/B slot over wg1), or --rollback',
    usage: 'kubedos upgrade SPEC --to BUILD_DIR [--dry-run] [--allow-downgrade] [--allow-destroy] [--channel C] [--outside-window] [--key PUB.pem] [--target T] [--json] | kubedos upgrade SPEC --rollback [--allow-destroy] [--target T] | kubedos upgrade SPEC --reseal [--target T]',
    help: [
      'Everything is checked before any node is touched, in this order; the first failure is one message, exit 1:',
      '  the cluster has a sealed deploy (N: the build it runs: the one its recovery bundle recorded, or, once an upgrade',
      '  completed, that upgrade\'s N+1, whose signed files the workspace keeps in upgrade/builds/);',
      '  N+1 (BUILD_DIR, from kubedos build) is signed by the cluster\'s build key and every output matches;',
      '  N+1 was built for this cluster; it is newer than N (older only with --allow-downgrade);',
      '  N+1\'s release channel (its signed manifest) is the one the cluster follows (the channel of the build it runs,',
      '  default stable; or --channel) or a more stable one (stable, candidate, edge); the cluster runs at least N+1\'s stepping stone',
      '  (spec.upgrades.requiresAtLeast of N+1\'s spec: the version to upgrade to first);',
      '  the last deploy converged and the cluster was not stopped since;',
      '  the waves (spec: kubernetes.ha.upgradeStrategy, maxUnavailable, failure domains) keep etcd quorum;',
      '  now is inside a maintenance window (spec.upgrades.maintenanceWindows; none: any time). Once running, a',
      '  window that has closed stops the upgrade before the next node (never in the middle of one).',
      'Then it prints the package diff N → N+1 (changed/added/removed, with versions, from the two signed SBOMs),',
      'the payload files that change, and the waves: the control plane first, domain by domain, the hub last.',
      'Without --dry-run it then applies N+1 (strategy rolling, nodes built with spec.upgrades.diskLayout: ab):',
      'every node must answer `kubedos-boot status` first (else one refusal, nothing touched); then node by node,',
      'wave by wave: stream the slot image over wg1 into the passive slot, reboot, wait for the health gate, then',
      'converge the node from the hub (its new slot keeps only what the node learned: etcd\'s configuration and the',
      'other converged files come back) before the next node (where Kubernetes runs: kubectl drain before the',
      'reboot, uncordon after the converge; a failed drain stops before it). A node that fails its gate falls back',
      'by itself and the upgrade stops naming it, the reason and its slot; a failed converge stops naming it, the',
      'node stays on N+1 and a rerun converges it again (or kubedos deploy SPEC; or --rollback).',
      'Under strategy replace (the default) the plan says per wave "replace" or "slot switch (the hub keeps its',
      'identity)"; a lone etcd member outside the hub is refused (its data would go with its VM); replacing needs',
      '--allow-destroy or stages.drill.allowDestroy: true. A replaced node is drained, fenced as a drill fences (its etcd',
      'member removed on a healthy peer, revoked at the hub), its VM destroyed and created again in its plan slot from',
      'N+1\'s image by a deploy run of that node alone (first boot, enroll, planes; its own journal), converged, gated.',
      'On qemu-local VMs one node has been replaced this way through its gate; a whole cluster not yet.',
      '--rollback returns the nodes on N+1 to their previous slot, the hub first (a replaced node is replaced again,',
      'from N\'s build in the workspace, checked to be the build N\'s bundle names). Exit: 0 done, 1 refused or',
      'stopped, 130 interrupted. Slot switches and --rollback have run on deployed qemu-local VMs (lab-3), not on Proxmox.',
      'Once every node runs N+1 (or, after --rollback, N again) the recovery bundle is sealed again for that build, with',
      'a fresh etcd snapshot, by the deploy seal\'s own checks (verified, proven restorable, then moved in): a restore',
      'from it brings back the build that runs (its --artifact: that build\'s directory). The build the bundle named',
      'before is kept in upgrade/builds/. When that seal fails the bundle stays as it was and the run says so;',
      '--reseal seals it again for the build the cluster runs once the cause is mended.',
      '  --target T          qemu-local or proxmox://HOST; default: the spec\'s substrate',
      '  --to DIR            the N+1 build directory',
      '  --dry-run           run the checks and print the plan; exit 0 when they pass',
      '  --reseal            seal the recovery bundle for the build the cluster runs (nothing else is done)',
      '  --allow-downgrade   accept an N+1 older than N',
      '  --allow-destroy     let replace waves destroy VMs (or set stages.drill.allowDestroy: true)',
      '  --channel C         follow channel C (stable, candidate, edge): move the cluster to C with this build',
      '  --outside-window    upgrade now, outside the maintenance windows (and do not stop when one closes)',
      '  --key FILE          trust this ed25519 public key (PEM) instead of the build key in N\'s bundle',
      '  --json              the preflight result as JSON',
      'The waves are planned against the live health, looked at once the files passed: every node\'s guest agent, the',
      'hub\'s wg1 handshakes and etcd\'s members and endpoints, through the guest agents (read-only; a dry run too). A node',
      'found unhealthy refuses the upgrade, an etcd member down counts against the quorum guard. When the substrate',
      'cannot be reached the guard assumes the members healthy as the converged deploy left them, and says so.',
    ].join('\n'),
    async run(argv, io) {
      const { values, positionals } = parseCommandArgs(argv, {
        to: { type: 'string' },
        'dry-run': { type: 'boolean' },
        'allow-downgrade': { type: 'boolean' },
        'allow-destroy': { type: 'boolean' },
        channel: { type: 'string' },
        'outside-window': { type: 'boolean' },
        rollback: { type: 'boolean' },
        reseal: { type: 'boolean' },
        key: { type: 'string' },
        json: { type: 'boolean' },
        target: { type: 'string', short: 't' },
      });
      const [file, extra] = positionals;
      if (!file || extra) throw new UsageError('exactly one SPEC');
      if (values.rollback && values.to) throw new UsageError('--rollback returns the cluster to the build it ran before: give either --to or --rollback');
      if (values.reseal && (values.to || values.rollback)) throw new UsageError('--reseal seals the recovery bundle for the build the cluster runs: give it alone (a completed --to or --rollback reseals by itself)');
      if (!values.rollback && !values.to && !values.reseal) throw new UsageError('give the new build with --to BUILD_DIR (or --rollback, or --reseal)');
      const channel = values.channel === undefined ? undefined : UpgradeChannel.safeParse(values.channel);
      if (channel && !channel.success) throw new UsageError(`--channel ${values.channel}: one of ${UPGRADE_CHANNELS.join(', ')}`);
      if (values.rollback && (channel || values['outside-window'])) throw new UsageError('--channel and --outside-window are for an upgrade: --rollback is taken whatever the channel and the windows');
      const loaded = loadSpec(file, io.cwd);
      if (!loaded.spec) return reportInvalidSpec(loaded, file, io, 'nothing was checked or touched');
      const spec = loaded.spec;
      const source: SpecSource = { name: file, text: readFileSync(loaded.path, 'utf8') };
      if (values.reseal) return resealCommand(spec, source, values.target, io);
      if (values.rollback) {
        const what = `upgrade --rollback ${spec.metadata.name}`;
        const notAb = specNotAb(spec);
        if (notAb) {
          io.err(`${what} refused: ${notAb}`);
          return 1;
        }
        const deployed = deployedBuildDir(spec.metadata.name, io.env);
        const manifest = join(deployed, MANIFEST_FILE);
        if (!existsSync(manifest)) {
          io.err(`${what} refused: no sealed deploy (${manifest}): nothing to roll back to`);
          return 1;
        }
        const { version, digest } = readBuildRef(deployed);
        const from: BuildRef = { version, digest };
        const p = plan(spec);
        const waves = upgradeWaves(spec, p);
        if (!waves.ok) {
          io.err(`${what} refused: ${waves.message}`);
          return 1;
        }
        const substrate = substrateSession(spec, p, values.target, io);
        try {
          return report(what, await applyOnVms({ spec, source, specPath: loaded.path, waves: waves.waves, from, ...(values['allow-destroy'] ? { allowDestroy: true } : {}), substrate, io }), io);
        } finally {
          await substrate.close();
        }
      }
      const artifactDir = resolve(io.cwd, values.to!);
      if (!existsSync(artifactDir) || !statSync(artifactDir).isDirectory()) {
        io.err(`upgrade refused: ${values.to}: no such directory (the N+1 build directory from kubedos build --spec ${file} --out DIR). Nothing was touched`);
        return 1;
      }
      let publicKeyPem: string | undefined;
      if (values.key) {
        try {
          publicKeyPem = readFileSync(resolve(io.cwd, values.key), 'utf8');
        } catch (err) {
          io.err(`upgrade refused: cannot read --key ${values.key}: ${(err as Error).message}. Nothing was touched`);
          return 1;
        }
      }
      // Images and ISOs take seconds each to hash: say which one is being checked.
      const onProgress = (f: string): void => {
        if (!values.json && /\.(qcow2|iso)$/.test(f)) io.err(`checking ${f} against N+1's signed manifest…`);
      };
      const outsideWindow = Boolean(values['outside-window']);
      const p = plan(spec);
      const substrate = substrateSession(spec, p, values.target, io);
      try {
        const r = await upgradePreflight({
          spec,
          plan: p,
          observeHealth: (n1) => {
            if (!values.json) io.err(`looking at ${spec.metadata.name} through its guest agents (nodes, wg1 handshakes, etcd)…`);
            return deps.observeHealth({ spec, plan: p, n1, driver: substrate.driver, io });
          },
          artifactDir,
          allowDowngrade: Boolean(values['allow-downgrade']),
          env: io.env,
          onProgress,
          ...(publicKeyPem ? { publicKeyPem } : {}),
          ...(channel?.success ? { channel: channel.data } : {}),
          ...(outsideWindow ? { outsideWindow } : {}),
          ...(values['dry-run'] ? { dryRun: true } : {}),
        });
        if (values.json) io.out(JSON.stringify(r, null, 2));
        if (!r.ok) {
          if (!values.json) for (const c of r.checks) io.out(`ok    ${c}`);
          io.err(`upgrade refused (${r.code}): ${r.message}`);
          return 1;
        }
        if (!values.json) {
          for (const c of r.checks) io.out(`ok    ${c}`);
          io.out('');
          const pkgs = diffIsEmpty(r.diff.packages) ? ['  (no package moved)'] : renderDiff(r.diff.packages);
          io.out(`packages N → N+1: ${diffSummary(r.diff.packages)}`);
          for (const l of pkgs.length > DIFF_SHOWN ? [...pkgs.slice(0, DIFF_SHOWN), `  … and ${pkgs.length - DIFF_SHOWN} more (--json lists them all)`] : pkgs) io.out(l);
          const p = r.diff.payload;
          io.out(`payload N → N+1: ${p.changed.length} changed, ${p.added.length} added, ${p.removed.length} removed`);
          for (const l of renderPayloadDiff(p, DIFF_SHOWN)) io.out(l);
          io.out('');
          for (const l of renderPlan(r.waves, spec.spec.kubernetes.ha.upgradeStrategy)) io.out(l);
          for (const w of r.warnings) io.out(`note: ${w}`);
        }
        if (values['dry-run']) {
          if (!values.json) io.out(`\ndry run: every check passed; nothing was touched`);
          return 0;
        }
        const what = `upgrade ${spec.metadata.name} ${r.from.version} → ${r.to.version}`;
        const notAb = specNotAb(spec);
        if (notAb) {
          io.err(`${what} refused: ${notAb}`);
          return 1;
        }
        // N and N+1 as the preflight verified them (the digests of the signed manifests it read).
        const from: BuildRef = { version: r.from.version, digest: r.from.digest };
        const to = { version: r.to.version, digest: r.to.digest, keyid: r.to.keyid };
        // The windows again before each node's first action: the run stops when they have closed.
        const windows = upgradePolicyOf(spec).maintenanceWindows;
        const maintenanceWindow = !outsideWindow && windows.length ? (now: number): WindowState => windowAt(now, windows) : undefined;
        return report(what, await applyOnVms({ spec, source, specPath: loaded.path, waves: r.waves, from, to, ...(values['allow-downgrade'] ? { allowDowngrade: true } : {}), ...(values['allow-destroy'] ? { allowDestroy: true } : {}), ...(maintenanceWindow ? { maintenanceWindow } : {}), artifactDir, substrate, io }), io);
      } finally {
        await substrate.close();
      }
    },
  };
}
