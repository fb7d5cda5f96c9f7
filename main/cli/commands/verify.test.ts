import { generateKeyPairSync } from 'node:crypto';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BundleFixture } from '../../bundle/testing';
import { bundleFixture, writeFakeBuild } from '../../bundle/testing';
import { writeBundle } from '../../bundle/write';
import type { CliIo } from '../command';
import { UsageError } from '../command';
import { verifyCommand } from './verify';

function io(cwd: string): CliIo & { outText: string[]; errText: string[] } {
  const outText: string[] = [];
  const errText: string[] = [];
  return { out: (t) => outText.push(t), err: (t) => errText.push(t), cwd, env: {}, signal: new AbortController().signal, isTty: false, outText, errText };
}

let root: string;
let fx: BundleFixture;
let bundle: string;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'kd-verify-cli-'));
  fx = await bundleFixture(root);
  bundle = writeBundle(fx).dir;
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('kubedos verify', () => {
  it('rejects bad usage', async () => {
    await expect(verifyCommand.run([], io(root))).rejects.toBeInstanceOf(UsageError);
    await expect(verifyCommand.run(['a', 'b'], io(root))).rejects.toBeInstanceOf(UsageError);
  });

  it('says plainly when DIR is missing or is neither a build nor a bundle', async () => {
    const missing = io(root);
    expect(await verifyCommand.run(['no-such-dir'], missing)).toBe(1);
    expect(missing.errText.join('\n')).toMatch(/no-such-dir: no such directory/);
    writeFileSync(join(root, 'stray.txt'), 'x');
    const neither = io(root);
    expect(await verifyCommand.run(['.'], neither)).toBe(1);
    expect(neither.errText.join('\n')).toMatch(/neither a build directory \(no manifest\.json\) nor a recovery bundle/);
  });

  it('verifies a build directory (no bundle.json) output by output', async () => {
    const dir = join(root, 'build-out');
    writeFakeBuild(dir, fx.plan, fx.specText, fx.signingKey, true);
    const good = io(root);
    expect(await verifyCommand.run(['build-out'], good)).toBe(0);
    expect(good.outText.join('\n')).toMatch(/^verify ok: 6 files match, signatures by key [0-9a-f]{64}$/);
    appendFileSync(join(dir, 'images/lab-3-worker.qcow2'), 'x');
    const bad = io(root);
    expect(await verifyCommand.run(['build-out'], bad)).toBe(1);
    expect(bad.errText.join('\n')).toMatch(/verify FAILED: images\/lab-3-worker\.qcow2: size/);
  });

  it('verifies a recovery bundle and prints what it checked', async () => {
    const a = io(root);
    expect(await verifyCommand.run([bundle], a)).toBe(0);
    const out = a.outText.join('\n');
    expect(out).toMatch(/^ok {4}signature: bundle\.json signed by key [0-9a-f]{64} \(embedded key\)$/m);
    expect(out).toMatch(/^ok {4}files: \d+ listed files match sha256 and size; nothing unlisted$/m);
    expect(out).toMatch(/^ok {4}build: manifest, SBOM and provenance envelopes verify/m);
    expect(out).toMatch(/^ok {4}trust: hub\.pin sha256:/m);
    expect(out).toMatch(/verify ok: recovery bundle of lab-3, signed by key /);
    expect(a.errText).toEqual([]);

    const keyFile = join(root, 'kept.pub.pem');
    writeFileSync(keyFile, fx.signingKey.publicKeyPem);
    const pinned = io(root);
    expect(await verifyCommand.run([bundle, '--key', keyFile], pinned)).toBe(0);
    expect(pinned.outText.join('\n')).toMatch(/\(the key given\)/);

    const j = io(root);
    expect(await verifyCommand.run([bundle, '--json'], j)).toBe(0);
    expect(JSON.parse(j.outText.join('\n'))).toMatchObject({ kind: 'bundle', ok: true, cluster: 'lab-3' });
  });

  it('fails naming a tampered file', async () => {
    const hub = join(bundle, 'hub.json');
    appendFileSync(hub, '\n');
    const a = io(root);
    expect(await verifyCommand.run([bundle], a)).toBe(1);
    expect(a.errText.join('\n')).toMatch(/verify FAILED: recovery bundle .*: hub\.json: size \d+, bundle\.json says \d+/);
    expect(a.outText.join('\n')).not.toMatch(/verify ok/);
  });

  it('fails naming a file that bundle.json does not list', async () => {
    writeFileSync(join(bundle, 'nodes/extra.json'), '{}\n');
    const a = io(root);
    expect(await verifyCommand.run([bundle], a)).toBe(1);
    expect(a.errText.join('\n')).toMatch(/nodes\/extra\.json: not listed in bundle\.json/);
  });

  it('fails with a key that is not the bundle\'s', async () => {
    const other = join(root, 'other.pub.pem');
    writeFileSync(other, generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string);
    const a = io(root);
    expect(await verifyCommand.run([bundle, '--key', other], a)).toBe(1);
    expect(a.errText.join('\n')).toMatch(/signatures\/build-signing-key\.pub\.pem: the bundle's key [0-9a-f]{64} is not the key given/);
  });
});
