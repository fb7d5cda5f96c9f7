// electron-builder cannot run here (no Electron binary), so its configuration is checked
// against electron-builder's own JSON schema and against what electron-vite builds.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

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
