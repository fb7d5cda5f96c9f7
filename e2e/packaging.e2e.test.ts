// electron-builder cannot run here (no Electron binary), so its configuration is checked
// against electron-builder's own JSON schema and against what electron-vite builds.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ensureRendererBuilt } from './ui/harness';

const repo = join(import.meta.dirname, '..');
const config = parse(readFileSync(join(repo, 'electron-builder.yml'), 'utf8')) as Record<string, unknown> & {
  files: string[];
  extraResources: { from: string; to: string }[];
  linux: { target: { target: string }[]; icon: string };
  mac: { target: { target: string }[] };
  win: { target: { target: string }[] };
};

describe('electron-builder.yml', () => {
  it('is valid against app-builder-lib/scheme.json', () => {
    const schema = JSON.parse(readFileSync(join(repo, 'node_modules/app-builder-lib/scheme.json'), 'utf8'));
    const ajv = new Ajv({ strict: false, allErrors: true });
    const validate = ajv.compile(schema);
    const ok = validate(config);
    expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 1)).toEqual([]);
    expect(ok).toBe(true);
  });
  it('builds AppImage and deb for Linux, and has macOS and Windows targets', () => {
    expect(config.linux.target.map((t) => t.target)).toEqual(['AppImage', 'deb']);
    expect(config.mac.target.map((t) => t.target)).toEqual(['dmg']);
    expect(config.win.target.map((t) => t.target)).toEqual(['nsis']);
    expect(existsSync(join(repo, config.linux.icon))).toBe(true);
  });
  it('ships payload/ as extra resources and the electron-vite output as the app', () => {
    expect(config.extraResources).toContainEqual(expect.objectContaining({ from: 'payload', to: 'payload' }));
    expect(existsSync(join(repo, 'payload'))).toBe(true);
    expect(config.files).toContain('out/**');
    const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
    expect(pkg.main).toBe('out/main/index.js');
  });
});

describe('electron-vite output', () => {
  it('has a preload that is one CommonJS file needing nothing but electron', () => {
    ensureRendererBuilt();
    const preload = readFileSync(join(repo, 'out/preload/index.cjs'), 'utf8');
    const requires = [...preload.matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);
    expect([...new Set(requires)]).toEqual(['electron']);
    expect(preload).not.toMatch(/^\s*import\s/m);
    expect(preload).toContain('exposeInMainWorld');
    expect(preload).not.toContain('ipcRenderer:');
    expect(existsSync(join(repo, 'out/main/index.js'))).toBe(true);
  });
  it('bundles Monaco and its workers into the renderer (nothing from a CDN)', () => {
    const index = readFileSync(join(repo, 'out/renderer/index.html'), 'utf8');
    expect(index).not.toMatch(/https?:\/\//);
    expect(index).toContain("worker-src 'self' blob:");
  });
});
