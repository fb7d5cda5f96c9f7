// README.md of a recovery bundle: what is in it and the commands that check it and rebuild the
// cluster from it offline. Pure text from the bundle's inputs (no time of day), so it hashes the
// same on every seal of the same inputs.
import type { NodeRecord } from './schema';

export interface BundleReadmeInput {
  cluster: string;
  artifactVersion: string;
  hubPin: string;
  signingKeyId: string;
  nodes: readonly NodeRecord[];
  hasRevocations: boolean;
  /** Recovery material (encrypted to the recovery recipient) and whether it has an etcd snapshot. */
  recovery?: { recipient: string; etcdSnapshot: boolean };
  hasDrills?: boolean;
}

export function renderBundleReadme(r: BundleReadmeInput): string {
  const nodes = r.nodes.map((n) => `| ${n.node} | ${n.role} | ${n.vmid} | ${n.sshHostKey ? 'yes' : 'no'} | ${(['wg1', 'wg2', 'wg3'] as const).filter((p) => n.wgPublicKeys[p]).join(', ') || '-'} |`);
  return [
    `# Recovery bundle: ${r.cluster} (artifact ${r.artifactVersion})`,
    '',
    'Written by the `seal` stage of `kubedos deploy`. It holds the public record of the cluster:',
    'the exact spec, the plan, the build attestations, the public trust material and what each',
    ...(r.recovery
      ? [
          'node reported, and the secrets a restore needs (root and cluster CA keys, hub TLS and enrollment',
          'keys, build keys, an etcd snapshot) ENCRYPTED to the cluster\'s offline recovery recipient only.',
          'No private key, HMAC key or token is in it in clear.',
        ]
      : [
          'node reported. It holds no private key, no enrollment HMAC key and no token: those live in the',
          'workspace SecretStore and its offline recovery copy (docs/secrets.md).',
        ]),
    '',
    '## Layout',
    '',
    '```',
    'bundle.json                       every file below with sha256 and size; cluster, artifact, spec/plan/build hashes',
    'signatures/bundle.json.dsse.json  DSSE (ed25519) over bundle.json, made with the build signing key',
    'signatures/build-signing-key.pub.pem',
    'spec.yaml                         the ClusterSpec exactly as deployed',
    'plan.json                         the plan derived from it (canonical JSON)',
    'build/manifest.json               every build output (ISOs, images, darksite) by sha256; the outputs are not in here',
    'build/sbom.cdx.json               CycloneDX SBOM',
    'build/provenance.intoto.json      in-toto / SLSA provenance',
    'build/signatures/                 the build\'s DSSE envelopes and public key',
    'trust/root-ca.crt                 offline root CA certificate',
    'trust/cluster-ca.crt              the cluster intermediate CA certificate',
    'trust/hub.crt, trust/hub.pin      the enrollment hub\'s TLS certificate and its pin (sha256 of the DER)',
    ...(r.hasRevocations ? ['trust/revoked.json                revoked nodes: a rebuilt hub enforces this from its first boot'] : []),
    'hub.json                          the hub\'s LAN and enrollment address, plane public keys and ports',
    'nodes/<name>.json                 per node: VMID, WireGuard public keys per plane, SSH host key, first-boot record',
    'stages.json                       the sealing run: each stage\'s final state (from the journal) and summary',
    ...(r.hasDrills ? ['drills/history.json               every drill and heal recorded for the cluster (phases, MTTR)'] : []),
    ...(r.recovery
      ? [
          'recovery/recipient.txt            the recovery recipient every file below is encrypted to (only to it)',
          'recovery/root-ca.key.age          the offline root CA key',
          'recovery/secrets.json.age         the workspace secrets: cluster CA, hub TLS, enrollment HMAC, build keys',
          ...(r.recovery.etcdSnapshot ? ['recovery/etcd-snapshot.db.age     an etcd snapshot taken by the seal'] : []),
        ]
      : []),
    '```',
    ...(r.recovery
      ? ['', `The files under recovery/ open only with the recovery identity of \`${r.recovery.recipient}\` (kept offline),`, 'never with anything that sits beside this bundle: `age -d -i RECOVERY-IDENTITY recovery/root-ca.key.age`.']
      : []),
    '',
    `Signing key id: \`${r.signingKeyId}\``,
    `Hub pin: \`${r.hubPin}\``,
    '',
    '| node | role | vmid | ssh host key | plane keys |',
    '|---|---|---|---|---|',
    ...nodes,
    '',
    '## Check it (offline)',
    '',
    '```sh',
    'kubedos verify BUNDLE_DIR                        # signature, every file, build attestations, spec/plan hashes',
    'kubedos verify BUNDLE_DIR --key KEPT-KEY.pub.pem # the same, against a key you kept elsewhere',
    '```',
    '',
    'It fails on the first file that differs, is missing, or is not listed.',
    '',
    '## Rebuild offline',
    '',
    ...(r.recovery
      ? [
          '1. With the recovery identity and the kept artifact (build directory), `kubedos restore BUNDLE_DIR',
          '   --artifact BUILD --recovery-key RECOVERY-IDENTITY --target …` checks both offline, then makes a',
          '   fresh workspace with the same cluster identity (same CA fingerprint, same plan hash) and deploys.',
          '   By hand instead: decrypt recovery/*.age with `age -d -i RECOVERY-IDENTITY` and follow the steps below.',
        ]
      : [
          '1. Restore the workspace secrets from the recovery copy (docs/secrets.md, "Air-gapped recovery"):',
          '   the build signing key, the darksite key, the cluster CA. Without them, a rebuild signs with',
          '   new keys and nodes must be enrolled again.',
        ]),
    '2. Check the spec and the plan:',
    '   ```sh',
    '   kubedos validate spec.yaml',
    '   kubedos plan spec.yaml --against plan.json      # expect: every node "keep"',
    '   ```',
    '3. Rebuild the artifact without the network from a kept build (its darksite: the lock in',
    '   build/darksite/darksite.lock.json here says exactly which package files it must hold):',
    '   ```sh',
    '   kubedos build --spec spec.yaml --out BUILD --offline --from KEPT_BUILD',
    '   kubedos verify BUILD',
    '   ```',
    '   The outputs in BUILD/manifest.json carry the same sha256 as build/manifest.json here',
    '   when the build is reproduced from the same inputs (same SOURCE_DATE_EPOCH, lock and payload).',
    '4. To check images you still have instead: copy build/ to a directory, put the ISOs and',
    '   images at the paths build/manifest.json names, and run `kubedos verify` on it.',
    '5. Deploy again: `kubedos deploy spec.yaml --target qemu-local|proxmox://HOST`. A rebuilt hub',
    '   gets the pin above; nodes keep their WireGuard keys and enroll again with new tokens.',
    '',
  ].join('\n');
}
