// The recovery bundle sealed again once every node runs another build: after a completed upgrade
// (N+1) or --rollback (the build the upgrade started from). Without it the bundle kept naming the
// deployed build, so a restore brought back what no node ran any more. The bundle is written by the
// seal's own rule (main/bundle/seal.ts sealBundle: verified where it was staged, proven restorable,
// only then moved in) from:
//   - the build the cluster now runs: its signed files (a build directory, or the copy the
//     workspace keeps in upgrade/builds/<sha256 of its manifest>/) and the spec it was built from,
//     checked against the manifest's signed inputs.spec;
//   - what the bundle in place says of the nodes, the hub and the deploy run that sealed it (a slot
//     switch keeps a node's identity: same VMID, keys and plane addresses), except for the nodes a
//     replace-based upgrade (or its --rollback) created again: their new host key and plane keys
//     from their own deploy run's journal (main/stages/converge.ts replacedSince: converge and the
//     node terminal pin them by the same rule);
//   - the workspace's trust files, recovery material and drill history, and a new etcd snapshot.
// Before the new bundle goes in, the build the bundle in place names is kept in upgrade/builds/
// (with its spec.yaml), so --rollback can seal it again and the next preflight still reads it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { plan as planOf } from '../../common/plan/index';
import { Plan } from '../../common/plan/schema';
import type { ClusterSpec } from '../../common/spec/schema';
import { parseSpec } from '../../common/spec/index';
import { plural } from '../../common/text/plural';
import { MANIFEST_FILE, PLAN_FILE } from '../build/attest';
import { plannedWith, readBuildPlan } from '../build/verify';
import type { SealSnapshot } from '../bundle/seal';
import { sealBundle } from '../bundle/seal';
import { BUNDLE_PATHS, BundleManifest, HubRecord, NodeRecord, StagesRecord } from '../bundle/schema';
import { BundleInputError } from '../bundle/write';
import type { NodeFacts } from '../node-facts';
import { clusterWorkspace, WORKSPACE_LAYOUT } from '../workspace';
import { builtFrom, keepBuildFiles, KEPT_SPEC_FILE, returnToBuild } from './preflight';
import { errText } from '../../common/text/error-text';
import { readFirstboot, replacedSince } from '../stages/converge';

export interface ResealRequest {
  cluster: string;
  env: NodeJS.ProcessEnv;
  /** The build every node now runs: a build directory or its kept copy (manifest, SBOM, provenance, signatures, key). */
  buildDir: string;
  version: string;
  /** The spec that build was made from, exactly as read; default: the kept copy's spec.yaml. */
  specText?: string;
  /** An etcd snapshot of the running cluster (main/stages/seal-snapshot.ts takeEtcdSnapshot). */
  snapshot: (plan: Plan) => Promise<SealSnapshot>;
  log?: (line: string) => void;
}

export type ResealResult =
  | { kind: 'resealed'; line: string; bundleSha256: string }
  | { kind: 'unchanged'; line: string }
  | { kind: 'failed'; line: string };


/**
 * The node facts the bundle in place records, as the seal takes them (a bundle's NodeRecord without
 * its role), with those of the nodes created again since the cluster's first boot (replacedSince):
 * a restore, converge and the terminal pin the keys those nodes have now. `renewed`: the nodes
 * whose facts are not the bundle's (a new VM since it was sealed).
 */
function factsOf(ws: string, bundleDir: string, p: Plan, log: (line: string) => void): { nodes: Record<string, NodeFacts>; renewed: string[] } {
  const nodes: Record<string, NodeFacts> = {};
  for (const n of p.nodes) {
    const file = join(bundleDir, BUNDLE_PATHS.nodesDir, `${n.name}.json`);
    if (!existsSync(file)) throw new BundleInputError(`the bundle in place has no ${BUNDLE_PATHS.nodesDir}/${n.name}.json (the plan of this build names ${n.name})`, 'a build whose plan adds nodes is deployed, not upgraded to: kubedos deploy SPEC');
    const { role: _role, ...facts } = NodeRecord.parse(JSON.parse(readFileSync(file, 'utf8')));
    nodes[n.name] = facts;
  }
  const renewed: string[] = [];
  const deployed = readFirstboot(join(ws, WORKSPACE_LAYOUT.journal));
  for (const [name, r] of Object.entries(replacedSince(ws, deployed.kind === 'ok' ? deployed.at : '', p.nodes.map((n) => n.name)))) {
    if (!r.wgPublicKeys) throw new BundleInputError(`${name} is a new VM since the deploy (${r.journal}), and no planes stage recorded its plane keys since its first boot`, 'rerun kubedos upgrade SPEC (its replacement runs its planes stage), then kubedos upgrade SPEC --reseal');
    const now: NodeFacts = { ...r.facts, wgPublicKeys: r.wgPublicKeys };
    if (canonicalJson(now) === canonicalJson(nodes[name])) continue; // sealed since it was created
    nodes[name] = now;
    renewed.push(name);
    log(`${name}: a new VM since the bundle was sealed: its host key and plane keys from ${r.journal}`);
  }
  return { nodes, renewed };
}

/** The spec and plan the bundle in place was sealed with, each read once, when first asked (a file missing or not JSON throws, naming it). */
interface SealedWith {
  dir: string;
  specText: () => string;
  plan: () => unknown;
}

function sealedWith(bundleDir: string): SealedWith {
  const once = <T>(read: () => T): (() => T) => {
    let v: { value: T } | undefined;
    return () => (v ??= { value: read() }).value;
  };
  const specText = once(() => readFileSync(join(bundleDir, BUNDLE_PATHS.spec), 'utf8'));
  const plan = once((): unknown => {
    const file = join(bundleDir, BUNDLE_PATHS.plan);
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new BundleInputError(`${file} cannot be read as JSON: ${errText(err).split('\n')[0]}`, `kubedos verify ${bundleDir} says what is wrong`);
    }
  });
  return { dir: bundleDir, specText, plan };
}

/**
 * The plan sealed with the build: the one it was made from (PLAN_FILE beside its signed files,
 * bound by inputs.planSha256; the bundle's own plan.json when the bundle holds the build). Another
 * version of kubedos may plan the same spec differently, so the spec is planned again only for a
 * build that keeps no plan, and must then give the plan the build was made from.
 */
function sealedPlan(r: ResealRequest, bundle: SealedWith, holds: boolean, manifestBytes: Buffer, spec: ClusterSpec): { ok: true; plan: Plan } | { ok: false; why: string } {
  if (holds) {
    try {
      return { ok: true, plan: Plan.parse(bundle.plan()) };
    } catch (err) {
      return { ok: false, why: `the bundle's ${BUNDLE_PATHS.plan} cannot be read as a plan (${errText(err).split('\n')[0]}); kubedos verify ${bundle.dir} says what is wrong` };
    }
  }
  const own = readBuildPlan(r.buildDir, manifestBytes);
  if (own.kind === 'ok') return { ok: true, plan: own.plan };
  if (own.kind === 'bad') return { ok: false, why: `its ${PLAN_FILE} (${join(r.buildDir, PLAN_FILE)}) is not the plan it was made from: ${own.why}` };
  const p = planOf(spec);
  if (sha256Hex(canonicalJson(p)) === plannedWith(manifestBytes)) return { ok: true, plan: p };
  return { ok: false, why: `this kubedos plans its spec differently from the kubedos that built ${r.version} (the plan's sha256 is not the signed manifest's inputs.planSha256), and ${r.buildDir} keeps no ${PLAN_FILE} (builds made before it was kept): seal it with the kubedos that built ${r.version} (kubedos upgrade SPEC --reseal), or build ${r.version} again with this one` };
}

/**
 * Seals the recovery bundle again for the build every node runs now. Never throws for what the
 * bundle is made of: the result says what happened, in one line, and a failure leaves the bundle in
 * place as it was (and says which build a restore from it brings back).
 */
export async function resealForRunningBuild(r: ResealRequest): Promise<ResealResult> {
  const ws = clusterWorkspace(r.cluster, r.env);
  const bundleDir = join(ws, WORKSPACE_LAYOUT.bundle);
  const manifestFile = join(bundleDir, BUNDLE_PATHS.manifest);
  if (!existsSync(manifestFile)) return { kind: 'failed', line: `the recovery bundle was not sealed again: ${bundleDir} holds none (kubedos deploy SPEC seals one)` };
  let inPlace: BundleManifest;
  try {
    inPlace = BundleManifest.parse(JSON.parse(readFileSync(manifestFile, 'utf8')));
  } catch (err) {
    return { kind: 'failed', line: `the recovery bundle was not sealed again: ${manifestFile} does not parse (${errText(err).split('\n')[0]}); kubedos verify ${bundleDir} says what is wrong` };
  }
  const manifestBytes = readFileSync(join(r.buildDir, MANIFEST_FILE));
  const digest = sha256Hex(manifestBytes);
  // The bundle may hold this build already: sealed again only for a node created again since (a replacement's new keys).
  const holds = inPlace.buildManifestSha256 === digest;
  const stillHolds = holds
    ? `the recovery bundle holds ${r.version} as it was sealed (a node created again since keeps its old keys there)`
    : `the recovery bundle still holds ${inPlace.artifactVersion}: a restore from it brings back ${inPlace.artifactVersion}, not ${r.version}`;
  const retry = `seal it again with kubedos upgrade SPEC --reseal once that is mended`;

  const bundle = sealedWith(bundleDir);
  const specFile = holds ? join(bundleDir, BUNDLE_PATHS.spec) : join(r.buildDir, KEPT_SPEC_FILE);
  let specText = r.specText;
  try {
    specText ??= holds ? bundle.specText() : readFileSync(specFile, 'utf8');
  } catch (err) {
    const what = holds ? `its own ${BUNDLE_PATHS.spec} (the spec ${r.version} was built from) cannot be read (${errText(err).split('\n')[0]})` : `the spec ${r.version} was built from is not kept beside its signed files (${specFile})`;
    return { kind: 'failed', line: `${stillHolds}: ${what}; ${retry}` };
  }
  const wanted = builtFrom(manifestBytes);
  if (wanted !== sha256Hex(specText)) {
    return { kind: 'failed', line: `${stillHolds}: ${r.version} was not built from this spec (its signed manifest names spec sha256 ${wanted?.slice(0, 16) ?? '(none)'}…, the spec is ${sha256Hex(specText).slice(0, 16)}…); ${retry} and the spec ${r.version} was built from` };
  }
  const parsed = parseSpec(specText);
  if (!parsed.spec) return { kind: 'failed', line: `${stillHolds}: the spec ${r.version} was built from does not parse (${parsed.diagnostics[0]?.message ?? 'invalid'})` };
  const planned = sealedPlan(r, bundle, holds, manifestBytes, parsed.spec);
  if (!planned.ok) return { kind: 'failed', line: `${stillHolds}: ${planned.why}` };
  const p = planned.plan;
  try {
    const hub = HubRecord.parse(JSON.parse(readFileSync(join(bundleDir, BUNDLE_PATHS.hub), 'utf8')));
    const { nodes, renewed } = factsOf(ws, bundleDir, p, r.log ?? (() => undefined));
    if (holds && !renewed.length) return { kind: 'unchanged', line: `the recovery bundle already holds ${r.version} (${bundleDir})` };
    const stages = StagesRecord.parse(JSON.parse(readFileSync(join(bundleDir, BUNDLE_PATHS.stages), 'utf8')));
    // The build the bundle in place names, kept first (with the spec and plan it sealed): --rollback seals it again from there.
    const previous = keepBuildFiles(r.cluster, r.env, join(bundleDir, BUNDLE_PATHS.buildDir), { specText: bundle.specText(), plan: bundle.plan() });
    const sealed = await sealBundle({ workspace: ws, env: r.env, specText, plan: p, buildDir: r.buildDir, hub, nodes, stages, snapshot: () => r.snapshot(p), log: r.log ?? (() => undefined) });
    // The bundle names what runs now: no pointer beside it (returnToBuild removes it for the sealed build).
    returnToBuild(r.cluster, r.env, { version: r.version, digest });
    const snap = sealed.written.manifest.recovery?.etcdSnapshot;
    return {
      kind: 'resealed',
      bundleSha256: sealed.written.bundleSha256,
      line: `recovery bundle sealed again for ${r.version} (was ${previous.version}): ${sealed.written.dir}, ${plural(sealed.written.manifest.files.length, 'file')}, bundle.json sha256 ${sealed.written.bundleSha256.slice(0, 16)}…, ${snap ? `etcd snapshot of ${snap.size} bytes from ${snap.node}` : 'no etcd snapshot (a restore from it starts etcd empty)'}; restore needs ${r.version}'s build directory as its --artifact`,
    };
  } catch (err) {
    const why = err instanceof BundleInputError ? `${err.message}${err.hint ? ` (${err.hint})` : ''}` : errText(err);
    return { kind: 'failed', line: `${stillHolds}: sealing it again failed: ${why}; ${retry}` };
  }
}
