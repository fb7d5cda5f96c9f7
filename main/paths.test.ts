import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { appRoot, payloadDir } from './paths';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tree(files: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'kd-paths-'));
  dirs.push(root);
  for (const f of files) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    if (!f.endsWith('/')) writeFileSync(join(root, f), '{}');
    else mkdirSync(join(root, f), { recursive: true });
  }
  return root;
}

describe('payloadDir', () => {
  it('finds the payload under the resources path of a packaged app (electron-builder extraResources)', () => {
    // What electron-builder lays out: the code inside resources/app.asar, payload/ beside it.
    const root = tree(['resources/app.asar/package.json', 'resources/app.asar/out/main/index.js', 'resources/payload/backplane/']);
    const layout = { resourcesPath: join(root, 'resources'), moduleFile: join(root, 'resources/app.asar/out/main/index.js') };
    expect(payloadDir(layout)).toBe(join(root, 'resources/payload'));
    // The asar has package.json but no payload: the app root alone would have been wrong.
    expect(appRoot(layout)).toBe(join(root, 'resources/app.asar'));
  });
  it('uses the checkout when Electron runs from one (its own resources folder has no payload)', () => {
    const root = tree(['package.json', 'payload/backplane/', 'out/main/index.js', 'node_modules/electron/dist/resources/default_app.asar']);
    const layout = { resourcesPath: join(root, 'node_modules/electron/dist/resources'), moduleFile: join(root, 'out/main/index.js') };
    expect(payloadDir(layout)).toBe(join(root, 'payload'));
  });
  it('uses the checkout in plain Node, from source and from the bundle alike', () => {
    const root = tree(['package.json', 'payload/', 'main/paths.ts', 'out/main/index.js']);
    expect(payloadDir({ moduleFile: join(root, 'main/paths.ts') })).toBe(join(root, 'payload'));
    expect(payloadDir({ moduleFile: join(root, 'out/main/index.js') })).toBe(join(root, 'payload'));
  });
  it('says where it looked when there is no payload', () => {
    const root = tree(['resources/app.asar/package.json', 'resources/app.asar/out/main/index.js']);
    expect(() => payloadDir({ resourcesPath: join(root, 'resources'), moduleFile: join(root, 'resources/app.asar/out/main/index.js') })).toThrow(
      /payload\/ not found: looked in .*resources\/payload and .*app\.asar\/payload/,
    );
  });
  it('takes $KUBEDOS_PAYLOAD_DIR first (a copy of payload/), and refuses one that is not a payload', () => {
    const root = tree(['package.json', 'payload/firstboot/', 'copy/firstboot/', 'other/', 'main/paths.ts']);
    const layout = { moduleFile: join(root, 'main/paths.ts') };
    expect(payloadDir(layout, { KUBEDOS_PAYLOAD_DIR: join(root, 'copy') })).toBe(join(root, 'copy'));
    expect(payloadDir(layout, { KUBEDOS_PAYLOAD_DIR: '' })).toBe(join(root, 'payload'));
    expect(() => payloadDir(layout, { KUBEDOS_PAYLOAD_DIR: join(root, 'other') })).toThrow(/KUBEDOS_PAYLOAD_DIR=.*other holds no firstboot\/, it is not a copy of payload\//);
  });
  it('finds this checkout\'s payload by default', () => {
    expect(payloadDir()).toBe(resolve(import.meta.dirname, '../payload'));
  });
});
