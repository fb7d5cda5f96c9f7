// Stage "seal": the cluster's recovery bundle in <workspace>/bundle (main/bundle): the spec as
// deployed, the plan, the build's attestations, the public trust material the enroll stage left
// in <workspace>/trust, every node's facts and the run's stage states, signed with the build
// signing key. The bundle is written next to its place, verified there with the same checks as
// `kubedos verify`, and only then moved in, so a bundle that does not verify never replaces a
// good one. Safe to rerun: the same inputs give a byte-identical bundle.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { BUNDLE_PATHS, BundleManifest } from '../bundle/schema';
import { BundleInputError, prepareBundle } from '../bundle/write';
import { recoveryInput } from '../bundle/recovery-input';
import { checkRestorable } from '../bundle/restorable';
import { readDrillHistory } from '../drills/history';
import { ageIdentity, openSecretStore } from '../trust/index';
import { recoveryIdentity } from '../trust/recovery';
import { takeEtcdSnapshot } from './seal-snapshot';
import { stagesRecord } from '../bundle/stages';
import { verifyBundle } from '../bundle/verify';
import { buildSigningKey } from '../build/keys';
import { readJournal } from '../pipeline/journal';
import type { StageDefinition } from '../pipeline/runner';
import { StageError } from '../pipeline/runner';
import { certFingerprint } from '../trust/ca';
import { RevocationList } from '../trust/revocation';
import { WORKSPACE_LAYOUT } from '../workspace';
import { sha256Hex } from '../../common/canonical';
import type { DeployContext, DeployOutputs, StageSummary } from './context';
import { deployStage, SealOutput } from './context';
import { plural } from '../../common/text/plural';

/** Public trust material the enroll stage leaves in <workspace>/trust (PEM; the pin is certFingerprint(hub.crt)). */
export const SEAL_TRUST_FILES = { root: 'root-ca.crt', intermediate: 'cluster-ca.crt', hub: 'hub.crt', pin: 'hub.pin', revoked: 'revoked.json' } as const;

const STAGES_FILE = BUNDLE_PATHS.stages;
/** Files that differ on every run by nature: the run record and the etcd snapshot. */
const PER_RUN_FILES = new Set<string>([STAGES_FILE, BUNDLE_PATHS.etcdSnapshot]);

/** path -> sha256 of the bundle in place, or undefined when there is none (or it is unreadable). */
function previousFiles(bundleFile: string): Map<string, string> | undefined {
  if (!existsSync(bundleFile)) return undefined;
  try {
    const m = BundleManifest.safeParse(JSON.parse(readFileSync(bundleFile, 'utf8')));
    return m.success ? new Map(m.data.files.map((f) => [f.path, f.sha256])) : undefined;
  } catch {
    return undefined;
  }
}

const fileSha = (path: string): string | null => (existsSync(path) ? sha256Hex(readFileSync(path)) : null);

const SEALED: readonly (keyof DeployOutputs)[] = ['build', 'provision', 'firstboot', 'backplanes', 'enroll', 'converge', 'workload'];

export function sealStage(ctx: DeployContext): StageDefinition {
  return deployStage({
    name: 'seal',
    description: 'Write and verify the recovery bundle: spec, plan, build attestations, public trust, node facts, signed',
    needs: ['workload'],
    reads: ['validate', 'plan', ...SEALED],
    rerun: 'safe-rerun',
    // What the bundle is made of: the spec, the plan, the build's attestations, the public trust
    // files, the nodes' facts and every stage's summary.
    inputs: (i) => {
      const trustDir = join(ctx.workspace, WORKSPACE_LAYOUT.trust);
      return {
        spec: sha256Hex(ctx.source.text),
        plan: sha256Hex(i.plan.json),
        build: i.build.outputs.map((o) => ({ path: o.path, sha256: o.sha256 })),
        trust: Object.fromEntries(Object.values(SEAL_TRUST_FILES).map((f) => [f, fileSha(join(trustDir, f))])),
        facts: i.firstboot,
        keys: i.backplanes.wgPublicKeys,
        summaries: SEALED.map((n) => (i[n] as { summary: StageSummary }).summary),
      };
    },
    output: SealOutput,
    // The bundle in place is the one the last seal wrote (one hash of bundle.json).
    async probe(_p, _i, last) {
      const have = fileSha(join(ctx.workspace, WORKSPACE_LAYOUT.bundle, BUNDLE_PATHS.manifest));
      if (have !== last.bundleSha256) return { moved: true, reason: have ? 'the bundle in place is not the one the last seal wrote' : 'there is no bundle in place' };
      return { moved: false, note: 'the bundle in place is the one the last seal wrote' };
    },
    async run(s, outputs) {
      const plan = outputs.plan.plan;
      const build = outputs.build;
      const cluster = plan.cluster.name;
      const summaries = Object.fromEntries(SEALED.map((n) => [n, (outputs[n] as { summary: StageSummary }).summary]));
      const nodes = Object.fromEntries(
        Object.entries(outputs.firstboot.nodes).map(([n, f]) => [n, { ...f, ...(outputs.backplanes.wgPublicKeys[n] ? { wgPublicKeys: outputs.backplanes.wgPublicKeys[n] } : {}) }]),
      );

      const trustDir = join(ctx.workspace, WORKSPACE_LAYOUT.trust);
      const trustPath = (f: string): string => join(trustDir, f);
      const absent = [SEAL_TRUST_FILES.root, SEAL_TRUST_FILES.intermediate, SEAL_TRUST_FILES.hub].filter((f) => !existsSync(trustPath(f)));
      if (absent.length) {
        throw new StageError(`seal: ${absent.join(', ')} missing in ${trustDir}`, {
          hint: 'the enroll stage writes the cluster\'s public certificates there (root-ca.crt, cluster-ca.crt, hub.crt); run kubedos deploy again so enroll runs, or restore them from the SecretStore\'s recovery copy',
        });
      }
      const trust = {
        rootCaPem: readFileSync(trustPath(SEAL_TRUST_FILES.root), 'utf8'),
        clusterCaPem: readFileSync(trustPath(SEAL_TRUST_FILES.intermediate), 'utf8'),
        hubCertPem: readFileSync(trustPath(SEAL_TRUST_FILES.hub), 'utf8'),
      };
      let hubPin: string;
      try {
        hubPin = certFingerprint(trust.hubCertPem);
      } catch (err) {
        throw new StageError(`seal: ${trustPath(SEAL_TRUST_FILES.hub)} is not a PEM certificate: ${(err as Error).message}`, { hint: 'run kubedos deploy again so enroll rewrites it' });
      }
      if (existsSync(trustPath(SEAL_TRUST_FILES.pin))) {
        const pinned = readFileSync(trustPath(SEAL_TRUST_FILES.pin), 'utf8').trim();
        if (pinned !== hubPin) {
          throw new StageError(`seal: ${trustPath(SEAL_TRUST_FILES.pin)} says ${pinned}, but hub.crt is ${hubPin}`, {
            hint: 'the hub certificate changed after its pin was written; run kubedos deploy again so enroll re-pins the nodes',
          });
        }
      }
      let revocations: RevocationList | undefined;
      if (existsSync(trustPath(SEAL_TRUST_FILES.revoked))) {
        let parsed;
        try {
          parsed = RevocationList.safeParse(JSON.parse(readFileSync(trustPath(SEAL_TRUST_FILES.revoked), 'utf8')));
        } catch (err) {
          throw new StageError(`seal: ${trustPath(SEAL_TRUST_FILES.revoked)} is not JSON: ${(err as Error).message}`, { hint: 'restore it (kubedos-enroll-hub keeps the same list in /etc/kubedos/enroll/revoked.json on the master)' });
        }
        if (!parsed.success) throw new StageError(`seal: ${trustPath(SEAL_TRUST_FILES.revoked)} is not a revocation list: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
        if (parsed.data.cluster !== cluster) throw new StageError(`seal: ${trustPath(SEAL_TRUST_FILES.revoked)} is for cluster ${parsed.data.cluster}, not ${cluster}`);
        revocations = parsed.data;
      }

      const journal = readJournal(join(ctx.workspace, WORKSPACE_LAYOUT.journal));
      const stages = stagesRecord(journal, s.runId, summaries);
      const bundleFile = join(ctx.workspace, WORKSPACE_LAYOUT.bundle, BUNDLE_PATHS.manifest);
      const before = previousFiles(bundleFile);
      s.progress(0.1, 'writing the bundle');
      const signingKey = await buildSigningKey(cluster, ctx.env, { log: (line) => s.log(line) });
      s.progress(0.05, 'taking an etcd snapshot');
      const snap = await (ctx.etcdSnapshot ?? ((p, signal) => takeEtcdSnapshot(ctx.substrate(outputs.validate.spec, p).driver, p, signal)))(plan, s.signal);
      if ('skipped' in snap) s.log(`etcd snapshot: none in this bundle (${snap.skipped})`);
      else s.log(`etcd snapshot: ${snap.data.length} bytes from ${snap.node}, encrypted to the recovery recipient`);
      const store = await openSecretStore(join(ctx.workspace, WORKSPACE_LAYOUT.secrets), await ageIdentity(ctx.env));
      const drills = readDrillHistory(cluster, { ...ctx.env, KUBEDOS_WORKSPACE: dirname(dirname(ctx.workspace)) });
      let prepared;
      let recovery;
      try {
        recovery = await recoveryInput({
          workspace: ctx.workspace,
          cluster,
          env: ctx.env,
          store,
          ...(before ? { previousBundleDir: join(ctx.workspace, WORKSPACE_LAYOUT.bundle) } : {}),
          ...('skipped' in snap ? {} : { etcdSnapshot: snap }),
        });
        prepared = prepareBundle({
          workspace: ctx.workspace,
          specText: ctx.source.text,
          plan,
          buildDir: build.outDir,
          trust: { ...trust, ...(revocations ? { revocations } : {}) },
          hub: outputs.firstboot.hub,
          nodes,
          stages,
          signingKey,
          recovery: recovery.input,
          ...(drills.records.length ? { drills: drills.records } : {}),
        });
      } catch (err) {
        if (err instanceof BundleInputError) throw new StageError(`seal: ${err.message}`, err.hint ? { hint: err.hint } : {});
        throw err;
      }

      s.progress(0.6, 'verifying the bundle');
      const v = await verifyBundle(prepared.stagingDir);
      for (const line of v.checks) s.log(`verified ${line}`);
      if (!v.ok) {
        prepared.discard();
        throw new StageError(`seal: the new recovery bundle does not verify: ${v.file}: ${v.reason}`, {
          hint: `the bundle in ${prepared.dir} was left as it was; fix the input named above and run kubedos deploy again`,
        });
      }
      // Seal re-proves restore: the bundle carries everything a restore decrypts, encrypted to the
      // recovery recipient; with the recovery identity at hand, every file is opened and checked.
      s.progress(0.8, 'checking the bundle is complete for a restore');
      const r = await checkRestorable(prepared.stagingDir, { identity: recoveryIdentity(ctx.workspace, ctx.env) });
      for (const line of r.checks) s.log(`restorable: ${line}`);
      if (!r.ok) {
        prepared.discard();
        throw new StageError(`seal: the new recovery bundle could not restore this cluster: ${r.file}: ${r.reason}`, {
          hint: `the bundle in ${prepared.dir} was left as it was; check the recovery recipient (kubedos recovery-key SPEC) and run kubedos deploy again`,
        });
      }
      s.log(
        r.level === 'decrypted'
          ? 'restorable: proven with the recovery identity (every encrypted file opened)'
          : 'restorable: checked without the recovery identity (it is offline): files present and age-encrypted; set KUBEDOS_RECOVERY_IDENTITY_FILE for a run to have them opened',
      );
      const written = prepared.commit();
      await recovery.remember();
      // stages.json names this run, so it differs on every run; count the files that say something new.
      const changed = written.manifest.files.filter((f) => !PER_RUN_FILES.has(f.path) && before?.get(f.path) !== f.sha256).map((f) => f.path);
      const removed = [...(before?.keys() ?? [])].filter((p) => !written.manifest.files.some((f) => f.path === p));
      const changes = changed.length + removed.length;
      s.changed(changes);
      const notes = [
        `${written.dir}: ${plural(written.manifest.files.length, 'file')}, bundle.json sha256 ${written.bundleSha256}`,
        `signed by build key ${written.manifest.signingKeyId}; hub pin ${hubPin}`,
        before === undefined
          ? 'first seal of this cluster'
          : changes
            ? `changed since the last seal: ${[...changed, ...removed.map((p) => `${p} (removed)`)].join(', ')}`
            : 'unchanged since the last seal except the run record (stages.json)',
      ];
      for (const n of notes) s.log(n);
      s.log(`check it offline: kubedos verify ${written.dir}`);
      s.progress(1);
      return { bundleSha256: written.bundleSha256, summary: { stage: 'seal', changes, notes } };
    },
  });
}
