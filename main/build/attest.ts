// Build attestations: manifest.json (every output's sha256 and size, the inputs' hashes),
// a CycloneDX 1.6 JSON SBOM, an in-toto Statement with a SLSA v1 provenance predicate, and
// ed25519 DSSE envelopes over each of them. Pure functions: the build passes values in.
import { sign, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import type { ArtifactUpgradePolicy } from '../../common/upgrade/policy';
import type { LockedPackage } from './darksite/pins';

export const MANIFEST_FILE = 'manifest.json';
export const SBOM_FILE = 'sbom.cdx.json';
export const PROVENANCE_FILE = 'provenance.intoto.json';
export const SIGNATURES_DIR = 'signatures';
export const PUBLIC_KEY_FILE = `${SIGNATURES_DIR}/build-signing-key.pub.pem`;
export const SIGNED_FILES = [MANIFEST_FILE, SBOM_FILE, PROVENANCE_FILE] as const;
/**
 * The plan the build was made from, as canonical JSON: its sha256 is the signed manifest's
 * inputs.planSha256, which binds it. Kept with the build because another version of kubedos may
 * plan the same spec differently (a plan is the foundry's reading of the spec): what is sealed with
 * the build later (a recovery bundle after an upgrade) is this plan, not a new one. Builds made
 * before it was written have none.
 */
export const PLAN_FILE = 'plan.json';
export const envelopePath = (file: string): string => `${SIGNATURES_DIR}/${file}.dsse.json`;

export interface OutputRecord {
  path: string;
  sha256: string;
  size: number;
  /** container-image: the OCI layout of declared images (oci/); upstream-file: declared files (files/). */
  kind: 'iso' | 'image' | 'darksite' | 'payload' | 'container-image' | 'upstream-file';
  role?: string;
}

export interface BuildInputs {
  spec: { path: string; sha256: string };
  planSha256: string;
  /** The cluster's darksite lock (canonical JSON) this build used. */
  lockSha256: string;
  /** The lock it replaced, when this build resolved a new one (update or changed lists). */
  previousLockSha256?: string;
  /** The cluster's installer udeb lock when the darksite carries installer udebs. */
  udebLockSha256?: string;
  payload: Record<string, { path: string; sha256: string }[]>;
  hostFiles: { path: string; package: string; sha256: string }[];
  tools: Record<string, string>;
  git?: { commit: string; dirty: boolean };
  /** What came from declared sources (spec.sources), each by the digest that was pinned and verified. */
  sources?: {
    apt: { source: string; name: string; version: string; architecture: string; sha256: string }[];
    images: { name: string; reference: string; digest: string }[];
    files: { name: string; url: string; sha256: string }[];
  };
}

export interface BuildManifest {
  apiVersion: 'kubedos.ca/v1alpha1';
  kind: 'BuildManifest';
  cluster: string;
  artifactVersion: string;
  sourceDateEpoch: number;
  roles: string[];
  inputs: BuildInputs;
  outputs: OutputRecord[];
  /** The spec's upgrade policy (spec.upgrades: channel, stepping stone; common/upgrade/policy.ts).
   * Absent in builds from before the policy gates: read as channel stable, no stepping stone. */
  upgrade?: ArtifactUpgradePolicy;
}

export function renderManifest(m: BuildManifest): string {
  return canonicalJson({ ...m, outputs: [...m.outputs].sort((a, b) => (a.path < b.path ? -1 : 1)) }, 2) + '\n';
}

function iso8601(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function purlOf(p: Pick<LockedPackage, 'name' | 'version' | 'architecture'> & { source?: string }): string {
  // A package from a declared upstream apt source ("upstream/<name>") is not Debian's: its namespace says where it came from.
  const up = p.source?.startsWith('upstream/') ? p.source.slice('upstream/'.length) : undefined;
  if (up) return `pkg:deb/${encodeURIComponent(up)}/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}?arch=${p.architecture}`;
  return `pkg:deb/debian/${encodeURIComponent(p.name)}@${encodeURIComponent(p.version)}?arch=${p.architecture}&distro=debian-12`;
}

/** Deterministic urn:uuid from content (RFC 4122 layout, version 5-like bits). */
export function contentUuid(seed: string): string {
  const h = sha256Hex(seed);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

export interface SbomInput {
  cluster: string;
  artifactVersion: string;
  sourceDateEpoch: number;
  packages: readonly (Omit<LockedPackage, 'source'> & { source?: string })[];
  payloadFiles: readonly { role: string; path: string; sha256: string }[];
  tools: Record<string, string>;
  kubedosVersion: string;
  outputs: readonly OutputRecord[];
  /** Container images from declared sources, by the digest that was pinned and verified. */
  images?: readonly { name: string; reference: string; digest: string }[];
  /** Plain files from declared sources. */
  upstreamFiles?: readonly { name: string; url: string; sha256: string }[];
  /**
   * spec.upgrades.diskLayout ab: the node's half of the A/B boot each role's image and installer
   * carry outside payload/ (abSbomFiles: scripts, units, the gate's configuration, the ESP's GRUB
   * files), `path` as `root/…` or `esp/…`, so an upgrade's diff names a changed gate or boot script.
   */
  abFiles?: readonly { role: string; path: string; sha256: string }[];
}

/** Pure: the package URL of an OCI image (purl type "oci"): name, digest, where it came from. */
export function ociPurl(reference: string, digest: string): string {
  const slash = reference.indexOf('/');
  const path = reference.slice(slash + 1).replace(/:[^/:]*$/, '');
  const name = path.slice(path.lastIndexOf('/') + 1);
  const tag = /:([^/:]+)$/.exec(reference.slice(slash + 1))?.[1];
  return `pkg:oci/${name}@${encodeURIComponent(digest)}?repository_url=${encodeURIComponent(`${reference.slice(0, slash)}/${path}`)}${tag ? `&tag=${encodeURIComponent(tag)}` : ''}`;
}

export function renderSbom(s: SbomInput): string {
  const debs = s.packages.map((p) => ({
    type: 'library',
    'bom-ref': purlOf(p),
    name: p.name,
    version: p.version,
    purl: purlOf(p),
    hashes: [{ alg: 'SHA-256', content: p.sha256 }],
    properties: [
      { name: 'kubedos:architecture', value: p.architecture },
      { name: 'kubedos:roles', value: p.roles.join(',') },
      { name: 'kubedos:filename', value: p.filename },
      ...(p.source ? [{ name: 'kubedos:source', value: p.source }] : []),
    ],
  }));
  const files = [...s.payloadFiles]
    .sort((a, b) => (`${a.role}/${a.path}` < `${b.role}/${b.path}` ? -1 : 1))
    .map((f) => ({ type: 'file', 'bom-ref': `payload:${f.role}/${f.path}`, name: `payload/${f.role}/${f.path}`, hashes: [{ alg: 'SHA-256', content: f.sha256 }] }));
  const images = [...(s.images ?? [])]
    .sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0))
    .map((i) => ({
      type: 'container',
      'bom-ref': ociPurl(i.reference, i.digest),
      name: i.reference.slice(i.reference.lastIndexOf('/') + 1).replace(/:.*$/, ''),
      version: i.digest,
      purl: ociPurl(i.reference, i.digest),
      hashes: [{ alg: 'SHA-256', content: i.digest.replace(/^sha256:/, '') }],
      properties: [
        { name: 'kubedos:reference', value: i.reference },
        { name: 'kubedos:source', value: i.name },
      ],
    }));
  const upstream = [...(s.upstreamFiles ?? [])]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((f) => ({ type: 'file', 'bom-ref': `upstream-file:${f.name}`, name: f.name, hashes: [{ alg: 'SHA-256', content: f.sha256 }], externalReferences: [{ type: 'distribution', url: f.url }] }));
  const ab = [...(s.abFiles ?? [])]
    .sort((a, b) => (`${a.role}/${a.path}` < `${b.role}/${b.path}` ? -1 : 1))
    .map((f) => ({ type: 'file', 'bom-ref': `ab:${f.role}/${f.path}`, name: `ab/${f.role}/${f.path}`, hashes: [{ alg: 'SHA-256', content: f.sha256 }] }));
  const tools = Object.keys(s.tools)
    .sort()
    .map((name) => ({ type: 'application', name, version: s.tools[name] }));
  const body = {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    version: 1,
    metadata: {
      timestamp: iso8601(s.sourceDateEpoch),
      tools: { components: [{ type: 'application', name: 'kubedos', version: s.kubedosVersion }, ...tools] },
      component: { type: 'platform', 'bom-ref': `cluster:${s.cluster}`, name: s.cluster, version: s.artifactVersion },
    },
    components: [...debs, ...images, ...upstream, ...files, ...ab],
    dependencies: [{ ref: `cluster:${s.cluster}`, dependsOn: [...debs.map((d) => d['bom-ref']), ...images.map((i) => i['bom-ref']), ...upstream.map((f) => f['bom-ref']), ...files.map((f) => f['bom-ref']), ...ab.map((f) => f['bom-ref'])] }],
  };
  const serial = `urn:uuid:${contentUuid(canonicalJson(body))}`;
  return canonicalJson({ ...body, serialNumber: serial }, 2) + '\n';
}

export interface ProvenanceInput {
  manifest: BuildManifest;
  externalParameters: Record<string, unknown>;
  kubedosVersion: string;
  nodeVersion: string;
  invocationId: string;
}

export function renderProvenance(p: ProvenanceInput): string {
  const m = p.manifest;
  const deps: { name: string; uri?: string; digest: Record<string, string> }[] = [
    { name: 'clusterspec', uri: `file:${m.inputs.spec.path}`, digest: { sha256: m.inputs.spec.sha256 } },
    { name: 'plan', digest: { sha256: m.inputs.planSha256 } },
    { name: 'darksite.lock.json', digest: { sha256: m.inputs.lockSha256 } },
    ...(m.inputs.previousLockSha256 ? [{ name: 'darksite.lock.json (previous)', digest: { sha256: m.inputs.previousLockSha256 } }] : []),
    ...m.inputs.hostFiles.map((h) => ({ name: h.path, uri: `pkg:deb/debian/${h.package}`, digest: { sha256: h.sha256 } })),
    ...(m.inputs.sources?.apt ?? []).map((p) => ({ name: `apt:${p.source}/${p.name}`, uri: purlOf({ ...p, source: `upstream/${p.source}` }), digest: { sha256: p.sha256 } })),
    ...(m.inputs.sources?.images ?? []).map((i) => ({ name: `image:${i.name}`, uri: ociPurl(i.reference, i.digest), digest: { sha256: i.digest.replace(/^sha256:/, '') } })),
    ...(m.inputs.sources?.files ?? []).map((f) => ({ name: `file:${f.name}`, uri: f.url, digest: { sha256: f.sha256 } })),
  ];
  if (m.inputs.git) deps.unshift({ name: 'source', uri: 'git+file:kubedos-foundry', digest: { gitCommit: m.inputs.git.commit } });
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [...m.outputs].sort((a, b) => (a.path < b.path ? -1 : 1)).map((o) => ({ name: o.path, digest: { sha256: o.sha256 } })),
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: {
        buildType: 'https://kubedos.ca/foundry/build/v1',
        externalParameters: p.externalParameters,
        internalParameters: { sourceDateEpoch: m.sourceDateEpoch, tools: m.inputs.tools, gitDirty: m.inputs.git?.dirty ?? null },
        resolvedDependencies: deps,
      },
      runDetails: {
        builder: { id: 'https://kubedos.ca/foundry/kubedos-cli', version: { kubedos: p.kubedosVersion, node: p.nodeVersion } },
        metadata: { invocationId: p.invocationId, startedOn: iso8601(m.sourceDateEpoch), finishedOn: iso8601(m.sourceDateEpoch) },
      },
    },
  };
  return canonicalJson(statement, 2) + '\n';
}

// ---- DSSE (https://github.com/secure-systems-lab/dsse, protocol v1) ----

export interface DsseEnvelope {
  payloadType: string;
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const t = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${payload.length} `), Buffer.from(payload)]);
}

export function payloadTypeFor(file: string): string {
  if (file === PROVENANCE_FILE) return 'application/vnd.in-toto+json';
  if (file === SBOM_FILE) return 'application/vnd.cyclonedx+json';
  return 'application/vnd.kubedos.manifest+json';
}

export function signDsse(payloadType: string, payload: Uint8Array, key: KeyObject, keyid: string): DsseEnvelope {
  const sig = sign(null, pae(payloadType, payload), key);
  return { payloadType, payload: Buffer.from(payload).toString('base64'), signatures: [{ keyid, sig: sig.toString('base64') }] };
}

export function verifyDsse(env: DsseEnvelope, publicKeyPem: string, keyid: string): Buffer {
  const payload = Buffer.from(env.payload, 'base64');
  const ok = env.signatures.some((s) => s.keyid === keyid && verify(null, pae(env.payloadType, payload), publicKeyPem, Buffer.from(s.sig, 'base64')));
  if (!ok) throw new Error('no valid signature from the build key');
  return payload;
}
