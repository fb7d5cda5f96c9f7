// Attack suite, issue 16 item 11: what ships. Production dependencies are exactly the packages
// the shipped Node code imports (Electron main, engine, CLI); test tools (ajv, CycloneDX's
// validator) and renderer libraries (bundled by Vite into out/renderer) are devDependencies, so
// the packaged app neither carries them twice nor exposes code it never runs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const SHIPPED_ROOTS = ['main', 'common', 'preload', 'bin'];

function shippedFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'testing') out.push(...shippedFiles(p));
    } else if (/\.(ts|mjs|js)$/.test(name) && !/\.test\.ts$/.test(name) && name !== 'testing.ts') out.push(p);
  }
  return out;
}

function packageOf(spec: string): string | undefined {
  if (spec.startsWith('.') || spec.startsWith('/') || spec.startsWith('node:') || builtinModules.includes(spec.split('/')[0] ?? '')) return undefined;
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

describe('security: dependencies', () => {
  it('item 11: production dependencies are exactly what shipped code imports (no test tools, no bundled renderer libraries)', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const imported = new Set<string>();
    for (const file of SHIPPED_ROOTS.flatMap(shippedFiles)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+|require\(\s*)['"]([^'"]+)['"]/g)) {
        const p = packageOf(m[1] as string);
        if (p && p !== 'electron') imported.add(p);
      }
    }
    const missing = [...imported].filter((p) => !(p in pkg.dependencies)).sort();
    const unused = Object.keys(pkg.dependencies).filter((p) => !imported.has(p)).sort();
    expect(missing, 'imported by shipped code but not a production dependency').toEqual([]);
    expect(unused, 'production dependencies no shipped code imports').toEqual([]);
  });
});
