import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BundleFixture } from '../bundle/testing';
import { bundleFixture, writeFakeBuild } from '../bundle/testing';
import { prebuiltReport } from './prebuilt';
import { sha256Hex } from '../../common/canonical';

let root: string;
let fx: BundleFixture;
beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'kd-h15-prebuilt-'));
  fx = await bundleFixture(root);
  writeFakeBuild(fx.buildDir, fx.plan, fx.specText, fx.signingKey, true);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('the build stage from a kept artifact (restore)', () => {
  it('verifies the artifact and reports its outputs, building nothing', async () => {
    const lines: string[] = [];
    const r = await prebuiltReport(fx.buildDir, 'lab-3', (l) => lines.push(l));
    expect(r.built).toEqual([]);
    expect(r.downloaded).toBe(0);
    expect(r.outputs.map((o) => o.path).sort()).toEqual(['images/lab-3-control-plane.qcow2', 'images/lab-3-master.qcow2', 'images/lab-3-worker.qcow2']);
    expect(lines.join('\n')).toMatch(/nothing is built/);
  });

  it('a replace-based upgrade\'s node: only the build its preflight verified, even when another build in the directory verifies with its own key', async () => {
    const digest = sha256Hex(readFileSync(join(fx.buildDir, 'manifest.json')));
    await expect(prebuiltReport(fx.buildDir, 'lab-3', () => undefined, digest)).resolves.toMatchObject({ built: [] });
    await expect(prebuiltReport(fx.buildDir, 'lab-3', () => undefined, 'e'.repeat(64))).rejects.toThrow(new RegExp(`holds another build than the one this run was checked against: its signed manifest has sha256 ${digest.slice(0, 12)}…, expected eeeeeeeeeeee…`));
  });

  it('refuses a tampered artifact and another cluster\'s', async () => {
    await expect(prebuiltReport(fx.buildDir, 'lab-9', () => undefined)).rejects.toThrow(/is for cluster lab-3, not lab-9/);
    const img = join(fx.buildDir, 'images/lab-3-worker.qcow2');
    const b = readFileSync(img);
    b[0] = b[0]! ^ 1;
    writeFileSync(img, b);
    await expect(prebuiltReport(fx.buildDir, 'lab-3', () => undefined)).rejects.toThrow(/does not verify: images\/lab-3-worker\.qcow2/);
  });
});
