import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../../common/canonical';
import { plan } from '../../../common/plan/index';
import { parseSpec, TEMPLATES } from '../../../common/spec/index';
import { inputsKey } from '../cache';
import { listFiles } from '../files';
import { OCI_NODE_DIR } from '../image/index';
import { ociLayoutFor } from '../index';
import { renderTestPayload } from '../payload/testing';
import { buildIso, isoKeyInputs, isoPayload, payloadInitrd } from './index';
import { INITRD_OCI_SCRIPT, ISO_OCI_DIR, renderOciLateScript, withOciLateCommand } from './oci';

const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
const reference = parseSpec(TEMPLATES['reference-16'].text).spec!;
const payloadOf = (role: 'worker' | 'lb') => renderTestPayload(plan(role === 'lb' ? reference : spec), role);

const tmp = mkdtempSync(join(tmpdir(), 'kubedos-iso-oci-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A small OCI image layout (the shape collectUpstream caches): oci-layout, index.json, blobs/sha256/*. */
function layout(dir: string): { dir: string; indexSha256: string } {
  mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
  const blob = (text: string): string => {
    const d = sha256Hex(text);
    writeFileSync(join(dir, 'blobs/sha256', d), text);
    return d;
  };
  const layer = blob('layer bytes\n');
  const manifest = blob(JSON.stringify({ schemaVersion: 2, layers: [{ digest: `sha256:${layer}` }] }));
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const index = JSON.stringify({ schemaVersion: 2, manifests: [{ digest: `sha256:${manifest}`, annotations: { 'org.opencontainers.image.ref.name': 'demo:1' } }] });
  writeFileSync(join(dir, 'index.json'), index);
  return { dir, indexSha256: sha256Hex(index) };
}

const treeHashes = (dir: string): [string, string][] => listFiles(dir).map((p) => [p, sha256Hex(readFileSync(join(dir, p)))]);

/** A directory of busybox applets: the script runs with the installer's tools, not the host's coreutils. */
function busyboxBin(): string {
  const bin = join(tmp, 'bb-bin');
  if (existsSync(bin)) return bin;
  mkdirSync(bin);
  for (const a of ['sh', 'cp', 'chmod', 'mkdir', 'rm', 'sha256sum', 'cut', 'cat', 'echo', 'mount', 'umount', 'modprobe']) symlinkSync('/usr/bin/busybox', join(bin, a));
  return bin;
}

describe('role ISO: the OCI image layout', () => {
  it('runs the layout copy first in late_command, the rest of the preseed unchanged', () => {
    const p = payloadOf('worker');
    const out = withOciLateCommand(p.preseed);
    const late = out.split('\n').filter((l) => l.startsWith('d-i preseed/late_command'));
    expect(late).toEqual([`d-i preseed/late_command string sh /${INITRD_OCI_SCRIPT} /target && sh /kubedos-payload/install-payload.sh /target /kubedos-payload && echo "KUBEDOS-LATE-COMMAND-DONE role=worker" > /dev/ttyS0`]);
    expect(out.split('\n').filter((l) => !l.startsWith('d-i preseed/late_command'))).toEqual(p.preseed.split('\n').filter((l) => !l.startsWith('d-i preseed/late_command')));
    expect(() => withOciLateCommand('d-i x string y\n')).toThrow(/0 preseed\/late_command lines/);
    // The payload's copy of the preseed says the same as the one the installer reads.
    const ip = isoPayload(p, { dir: '/x', indexSha256: 'a'.repeat(64) });
    expect(new TextDecoder().decode(ip.files.find((f) => f.path === 'preseed.cfg')!.data)).toBe(out);
    expect(isoPayload(p)).toBe(p);
  });

  it('gives the layout to the roles that run containerd only (control-plane, worker; not lb, etcd)', () => {
    const l = { dir: '/cache/oci', files: [] };
    expect(ociLayoutFor('worker', l)).toBe(l);
    expect(ociLayoutFor('control-plane', l)).toBe(l);
    for (const r of ['lb', 'etcd', 'master', 'storage'] as const) expect(ociLayoutFor(r, l)).toBeUndefined();
    expect(ociLayoutFor('worker', undefined)).toBeUndefined();
  });

  it('keeps the cache key of an ISO without a layout; a layout enters it by its index digest', () => {
    const base = { payloadHashes: [{ path: 'preseed.cfg', sha256: 'b'.repeat(64) }], darksite: 'd', host: {}, epoch: 1, netinstSha: undefined, tools: {}, cluster: 'lab-3', node: '22' };
    expect(inputsKey('iso', isoKeyInputs(base))).toBe(inputsKey('iso', { ...base }));
    expect(inputsKey('iso', isoKeyInputs(base, 'c'.repeat(64)))).not.toBe(inputsKey('iso', base));
    expect(inputsKey('iso', isoKeyInputs(base, 'c'.repeat(64)))).not.toBe(inputsKey('iso', isoKeyInputs(base, 'e'.repeat(64))));
  });

  it('the late script passes shellcheck and copies the layout exactly with busybox (a fake /target)', () => {
    const src = layout(join(tmp, 'medium-oci'));
    const script = join(tmp, INITRD_OCI_SCRIPT);
    writeFileSync(script, renderOciLateScript(src.indexSha256));
    expect(execFileSync('shellcheck', ['--severity=style', '--shell=sh', script], { encoding: 'utf8' })).toBe('');
    // The medium is read-only, as Rock Ridge presents it.
    for (const p of listFiles(src.dir)) chmodSync(join(src.dir, p), 0o444);
    const console = join(tmp, 'console.log');
    const env = { PATH: busyboxBin(), KUBEDOS_CONSOLE: console };
    const target = join(tmp, 'target');
    const r = spawnSync(join(busyboxBin(), 'sh'), [script, target, src.dir], { env, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const dest = join(target, OCI_NODE_DIR);
    expect(treeHashes(dest)).toEqual(treeHashes(src.dir));
    expect(sha256Hex(readFileSync(join(dest, 'index.json')))).toBe(src.indexSha256);
    expect(readFileSync(console, 'utf8')).toContain(`KUBEDOS-OCI-COPIED index=sha256:${src.indexSha256}`);

    // A damaged blob on the medium fails the install with what to do.
    const bad = join(tmp, 'medium-bad');
    const b = layout(bad);
    const victim = listFiles(bad).find((p) => p.startsWith('blobs/'))!;
    writeFileSync(join(bad, victim), 'flipped');
    // Same index (the blob is not read for it), so it is the blob check that stops the copy.
    expect(b.indexSha256).toBe(src.indexSha256);
    const rb = spawnSync(join(busyboxBin(), 'sh'), [script, join(tmp, 'target-bad'), bad], { env, encoding: 'utf8' });
    expect(rb.status).toBe(1);
    expect(rb.stderr).toMatch(/KUBEDOS-OCI-FAILED: blob sha256:[0-9a-f]{64} copied from .* does not match its digest .*write the ISO again/);

    // Another layout (another index digest) is not taken for the artifact's.
    const other = join(tmp, 'medium-other');
    mkdirSync(other);
    writeFileSync(join(other, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(other, 'index.json'), '{"schemaVersion":2,"manifests":[]}');
    const ro = spawnSync(join(busyboxBin(), 'sh'), [script, join(tmp, 'target-other'), other], { env, encoding: 'utf8' });
    expect(ro.status).toBe(1);
    expect(ro.stderr).toContain(`does not hold an OCI layout whose index.json is sha256:${src.indexSha256}`);
  });

  it.skipIf(process.getuid?.() !== 0)('the late script finds the layout on /cdrom (netinst installer) in a busybox chroot', () => {
    const root = join(tmp, 'di-root');
    mkdirSync(join(root, 'bin'), { recursive: true });
    for (const a of ['busybox', 'sh', 'cp', 'chmod', 'mkdir', 'rm', 'sha256sum', 'cut', 'modprobe', 'mount', 'umount']) execFileSync('cp', ['/usr/bin/busybox', join(root, 'bin', a)]);
    // The script's 2>/dev/null redirections need the path only (a file stands in for the device).
    mkdirSync(join(root, 'dev'));
    writeFileSync(join(root, 'dev/null'), '');
    const src = layout(join(root, 'cdrom', ISO_OCI_DIR));
    writeFileSync(join(root, INITRD_OCI_SCRIPT), renderOciLateScript(src.indexSha256));
    const chroot = execFileSync('sh', ['-c', 'command -v chroot'], { encoding: 'utf8' }).trim();
    const r = spawnSync(chroot, [root, '/bin/sh', `/${INITRD_OCI_SCRIPT}`, '/target'], { env: { PATH: '/bin', KUBEDOS_CONSOLE: '/console.log' }, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(treeHashes(join(root, 'target', OCI_NODE_DIR))).toEqual(treeHashes(src.dir));
    expect(readFileSync(join(root, 'console.log'), 'utf8')).toContain(`from=/cdrom/${ISO_OCI_DIR}`);
  });

  it('a worker ISO with a layout carries it (same index digest) and the initrd runs the copy; without one, neither', async () => {
    const darksite = join(tmp, 'darksite');
    mkdirSync(join(darksite, 'dists'), { recursive: true });
    writeFileSync(join(darksite, 'dists/Release'), 'Origin: test\n');
    const oci = layout(join(tmp, 'artifact-oci'));
    const extract = (iso: string, from: string, to: string): number => spawnSync('xorriso', ['-osirrox', 'on', '-indev', iso, '-extract', from, to], { stdio: 'ignore' }).status ?? -1;
    const build = async (name: string, role: 'worker' | 'lb', ociLayout?: typeof oci): Promise<string> => {
      const outFile = join(tmp, `${name}.iso`);
      await buildIso({ payload: payloadOf(role), darksiteDir: darksite, outFile, workDir: join(tmp, `work-${name}`), sourceDateEpoch: 1_700_000_000, cluster: 'lab-3', ...(ociLayout ? { ociLayout } : {}) });
      rmSync(join(tmp, `work-${name}`), { recursive: true, force: true });
      return outFile;
    };

    const withIso = await build('worker-oci', 'worker', oci);
    expect(extract(withIso, `/${ISO_OCI_DIR}`, join(tmp, 'x-oci'))).toBe(0);
    expect(treeHashes(join(tmp, 'x-oci'))).toEqual(treeHashes(oci.dir));
    expect(sha256Hex(readFileSync(join(tmp, 'x-oci/index.json')))).toBe(oci.indexSha256);
    expect(extract(withIso, '/kubedos/preseed.cfg', join(tmp, 'x-preseed.cfg'))).toBe(0);
    expect(readFileSync(join(tmp, 'x-preseed.cfg'), 'utf8')).toContain(`late_command string sh /${INITRD_OCI_SCRIPT} /target && `);
    // The installer's initrd ends with the overlay holding the preseed and the script.
    expect(extract(withIso, '/install/initrd.gz', join(tmp, 'x-initrd.gz'))).toBe(0);
    const p = isoPayload(payloadOf('worker'), oci);
    const extra = [{ path: INITRD_OCI_SCRIPT, data: new TextEncoder().encode(renderOciLateScript(oci.indexSha256)), mode: 0o755 }];
    const overlay = await payloadInitrd(p, join(tmp, 'work-overlay'), 1_700_000_000, undefined, extra);
    expect(readFileSync(join(tmp, 'x-initrd.gz')).subarray(-overlay.length).equals(overlay)).toBe(true);
    const listing = execFileSync('cpio', ['-t', '--quiet'], { input: execFileSync('gzip', ['-dc'], { input: overlay }), encoding: 'utf8' });
    expect(listing.split('\n')).toEqual(expect.arrayContaining([INITRD_OCI_SCRIPT, 'preseed.cfg']));

    // A layout whose index.json is not the artifact's is refused before anything is written.
    await expect(build('worker-bad', 'worker', { dir: oci.dir, indexSha256: 'f'.repeat(64) })).rejects.toThrow(/index\.json is sha256:[0-9a-f]{64}, the artifact's OCI index is sha256:f{64}/);

    // No layout (an lb ISO, or no declared images): nothing under /kubedos/oci, the plain late command.
    const lbIso = await build('lb', 'lb');
    expect(extract(lbIso, `/${ISO_OCI_DIR}`, join(tmp, 'x-lb-oci'))).not.toBe(0);
    expect(existsSync(join(tmp, 'x-lb-oci'))).toBe(false);
    expect(extract(lbIso, '/kubedos/preseed.cfg', join(tmp, 'x-lb-preseed.cfg'))).toBe(0);
    expect(readFileSync(join(tmp, 'x-lb-preseed.cfg'), 'utf8')).toBe(payloadOf('lb').preseed);
  }, 120_000);
});
