// `kubedos usb` as a user runs it, for what needs no block device: usage, refusals of input.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const bin = join(process.cwd(), 'bin/kubedos.mjs');
const dir = mkdtempSync(join(tmpdir(), 'kubedos-usb-cli-'));
const kubedos = (...args: string[]) => {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, KUBEDOS_WORKSPACE: join(dir, 'ws') } });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kubedos usb', () => {
  it('usage errors exit 2', () => {
    const noContent = kubedos('usb', 'write', '/dev/sdz');
    expect(noContent.code).toBe(2);
    expect(noContent.err).toContain('needs --artifact DIR, --bundle DIR or both');
    expect(kubedos('usb', 'list', '/dev/sdz').code).toBe(2);
  }, 120_000);

  it('an artifact that does not verify is refused before any device is looked at', () => {
    const art = join(dir, 'art');
    const r = kubedos('usb', 'write', '/dev/sdz', '--artifact', art);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^usb write FAILED: the artifact .*art does not verify: .*Nothing was written/m);
  }, 120_000);

  it('a receipt that is not one is named', () => {
    writeFileSync(join(dir, 'r.json'), '{"kind":"something else"}');
    const r = kubedos('usb', 'verify', '/dev/loop0', '--receipt', 'r.json');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/r\.json is not a USB write receipt/);
  }, 120_000);
});
