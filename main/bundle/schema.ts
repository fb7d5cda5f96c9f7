// The recovery bundle's shapes: bundle.json (the signed manifest of every file), the per-node
// facts, the hub's facts and the run record. Types come from these schemas; the seal stage's
// DeployContext types (main/stages/context.ts) are structurally the same inputs.
import { z } from 'zod';

export const BUNDLE_API_VERSION = 'kubedos.ca/v1alpha1';
export const BUNDLE_KIND = 'RecoveryBundle';

/** File names inside the bundle directory (POSIX, relative). */
export const BUNDLE_PATHS = {
  manifest: 'bundle.json',
  envelope: 'signatures/bundle.json.dsse.json',
  publicKey: 'signatures/build-signing-key.pub.pem',
  spec: 'spec.yaml',
  plan: 'plan.json',
  stages: 'stages.json',
  hub: 'hub.json',
  readme: 'README.md',
  buildDir: 'build',
  buildManifest: 'build/manifest.json',
  rootCa: 'trust/root-ca.crt',
  clusterCa: 'trust/cluster-ca.crt',
  hubCert: 'trust/hub.crt',
  hubPin: 'trust/hub.pin',
  revoked: 'trust/revoked.json',
  nodesDir: 'nodes',
  /** Drill results (main/drills/history.ts), sorted by id; present when any drill ran. */
  drills: 'drills/history.json',
  /** The recovery recipient (public, age1…) every file under recovery/ is encrypted to. */
  recoveryRecipient: 'recovery/recipient.txt',
  /** The offline root CA key, encrypted to the recovery recipient only (copied as the workspace keeps it). */
  recoveryRootKey: 'recovery/root-ca.key.age',
  /** The workspace SecretStore's secrets (RecoverySecrets JSON), encrypted to the recovery recipient only. */
  recoverySecrets: 'recovery/secrets.json.age',
  /** An etcd snapshot taken by the seal, encrypted to the recovery recipient only (when it could take one). */
  etcdSnapshot: 'recovery/etcd-snapshot.db.age',
} as const;

/** Files a bundle must hold to rebuild the same cluster identity (checked by checkRestorable). */
export const RESTORE_REQUIRED_FILES = [BUNDLE_PATHS.recoveryRecipient, BUNDLE_PATHS.recoveryRootKey, BUNDLE_PATHS.recoverySecrets] as const;

/** DSSE payload type of bundle.json's envelope. */
export const BUNDLE_PAYLOAD_TYPE = 'application/vnd.kubedos.recovery-bundle+json';

/** Files every bundle lists (nodes/*.json and trust/revoked.json come on top). */
export const REQUIRED_BUNDLE_FILES = [
  BUNDLE_PATHS.spec,
  BUNDLE_PATHS.plan,
  BUNDLE_PATHS.stages,
  BUNDLE_PATHS.hub,
  BUNDLE_PATHS.readme,
  BUNDLE_PATHS.buildManifest,
  'build/sbom.cdx.json',
  'build/provenance.intoto.json',
  'build/signatures/manifest.json.dsse.json',
  'build/signatures/sbom.cdx.json.dsse.json',
  'build/signatures/provenance.intoto.json.dsse.json',
  'build/signatures/build-signing-key.pub.pem',
  BUNDLE_PATHS.rootCa,
  BUNDLE_PATHS.clusterCa,
  BUNDLE_PATHS.hubCert,
  BUNDLE_PATHS.hubPin,
] as const;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256');
/** A relative POSIX path that stays inside the bundle. */
const bundlePath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.includes('\\') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'), 'a relative path inside the bundle');

export const BundleFileEntry = z.object({ path: bundlePath, sha256: sha256Hex, size: z.number().int().min(0) });
export type BundleFileEntry = z.infer<typeof BundleFileEntry>;

/** bundle.json. Holds no time of day: two seals of the same inputs give the same bytes. */
export const BundleManifest = z.object({
  apiVersion: z.literal(BUNDLE_API_VERSION),
  kind: z.literal(BUNDLE_KIND),
  cluster: z.string().min(1),
  artifactVersion: z.string().min(1),
  /** sha256 of spec.yaml's bytes (the exact source text). */
  specSha256: sha256Hex,
  /** sha256 of plan.json's bytes (canonical JSON, 2-space indent, trailing newline). */
  planSha256: sha256Hex,
  /** sha256 of build/manifest.json's bytes. */
  buildManifestSha256: sha256Hex,
  /** keyid (sha256 of the SPKI DER) of the build signing key that signs bundle.json and the build. */
  signingKeyId: sha256Hex,
  /** Every file of the bundle except bundle.json and signatures/, sorted by path. */
  files: z.array(BundleFileEntry),
  /** What a restore decrypts with the recovery identity (absent in bundles sealed before it existed). */
  recovery: z
    .object({
      /** The age recipient every file below is encrypted to (only to it). */
      recipient: z.string().regex(/^age1[02-9ac-hj-np-z]{58}$/, 'an age X25519 recipient'),
      /** The encrypted files, sorted. */
      encrypted: z.array(bundlePath),
      /** The etcd snapshot's source: member and the sha256 of the plaintext snapshot. */
      etcdSnapshot: z.object({ node: z.string(), sha256: sha256Hex, size: z.number().int().min(0) }).optional(),
    })
    .optional(),
});
export type BundleManifest = z.infer<typeof BundleManifest>;

const PlaneKeys = z.object({ wg1: z.string().optional(), wg2: z.string().optional(), wg3: z.string().optional() });

/** nodes/<name>.json: what a rebuilt hub and converge need to pin the node again. */
export const NodeRecord = z.object({
  node: z.string().min(1),
  role: z.string().min(1),
  vmid: z.number().int(),
  wgPublicKeys: PlaneKeys,
  sshHostKey: z.string().optional(),
  firstboot: z.object({ node: z.string(), startedAt: z.number(), completedAt: z.number(), steps: z.array(z.string()) }).optional(),
});
export type NodeRecord = z.infer<typeof NodeRecord>;

/** hub.json: the hub's addresses, plane keys and ports (public material only; its pin is trust/hub.pin). */
export const HubRecord = z.object({
  node: z.string().min(1),
  lanAddress: z.string(),
  enrollment: z.object({ address: z.string(), port: z.number().int() }),
  wgPublicKeys: z.object({ wg1: z.string(), wg2: z.string(), wg3: z.string() }),
  listenPorts: z.object({ wg1: z.number().int(), wg2: z.number().int(), wg3: z.number().int() }),
});
export type HubRecord = z.infer<typeof HubRecord>;

export const StageRecord = z.object({
  stage: z.string(),
  /** The stage's last state in the sealing run, from the journal ("running" for seal itself). */
  state: z.string().optional(),
  rerun: z.string().optional(),
  attempt: z.number().int().optional(),
  reason: z.string().optional(),
  inputHash: z.string().optional(),
  /** Changes the stage made (journal on success, or its summary in the deploy context). */
  changes: z.number().int().optional(),
  notes: z.array(z.string()).optional(),
});
export type StageRecord = z.infer<typeof StageRecord>;

/** stages.json: the run that sealed the bundle. Times here come from the journal only. */
export const StagesRecord = z.object({
  runId: z.string().optional(),
  pipeline: z.string().optional(),
  /** Journal time of the run's start event. */
  startedAt: z.string().optional(),
  stages: z.array(StageRecord),
});
export type StagesRecord = z.infer<typeof StagesRecord>;

/** recovery/secrets.json.age's plaintext: every SecretStore secret of the cluster, base64. */
export const RecoverySecrets = z.object({
  apiVersion: z.literal(BUNDLE_API_VERSION),
  kind: z.literal('RecoverySecrets'),
  cluster: z.string().min(1),
  /** SecretStore name -> base64 of the value. */
  secrets: z.record(z.string(), z.string()),
});
export type RecoverySecrets = z.infer<typeof RecoverySecrets>;
