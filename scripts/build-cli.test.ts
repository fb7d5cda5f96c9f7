// The prebuilt CLI: `npm run build:cli` writes out/cli/kubedos.mjs, bin/kubedos.mjs runs it while
// it is current and the sources otherwise, and the bundle still finds the checkout's own files
// (payload/, main/substrate/l2-hub.mjs, out/renderer) through main/paths.ts.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliBundle, helpRequest, REPO_ROOT } from '../bin/cli-bundle.mjs';
import { COMMANDS } from '../main/cli/commands/index';
import { main } from '../main/cli/main';
import { TEMPLATES } from '../common/spec/templates/index';
import type * as Paths from '../main/paths';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const temp = (prefix: string): string => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
};

describe('cliBundle: run the bundle only while it is current', () => {
  function fakeCheckout(): string {
    const root = temp('kd-bundle-');
    mkdirSync(join(root, 'out/cli'), { recursive: true });
    mkdirSync(join(root, 'main'), { recursive: true });
    writeFileSync(join(root, 'main/a.ts'), 'export {};\n');
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(root, 'main/a.ts'), old, old);
    writeFileSync(join(root, 'out/cli/kubedos.mjs'), 'export const main = async () => 0;\n');
    writeFileSync(join(root, 'out/cli/kubedos.inputs.json'), JSON.stringify({ entry: 'main/a.ts', startedMs: Date.now() - 1000, inputs: ['main/a.ts'] }));
    return root;
  }
  it('current: every input is older than the build', () => {
    const root = fakeCheckout();
    expect(cliBundle(root, {})).toEqual({ bundle: join(root, 'out/cli/kubedos.mjs'), why: 'current' });
  });
  it('an input edited after the build, a missing input, no bundle, or KUBEDOS_CLI_FROM_SOURCE: the sources', () => {
    const edited = fakeCheckout();
    writeFileSync(join(edited, 'main/a.ts'), 'export const b = 1;\n');
    expect(cliBundle(edited, {})).toEqual({ why: 'main/a.ts changed since the build' });
    const gone = fakeCheckout();
    rmSync(join(gone, 'main/a.ts'));
    expect(cliBundle(gone, {}).bundle).toBeUndefined();
    const none = fakeCheckout();
    rmSync(join(none, 'out/cli/kubedos.mjs'));
    expect(cliBundle(none, {})).toEqual({ why: 'not built (npm run build:cli)' });
    expect(cliBundle(fakeCheckout(), { KUBEDOS_CLI_FROM_SOURCE: '1' }).bundle).toBeUndefined();
  });
});

describe('npm run build:cli', () => {
  let dir: string;
  const kubedos = (...args: string[]) => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin/kubedos.mjs'), ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000, env: { ...process.env, KUBEDOS_DEBUG: '1', KUBEDOS_WORKSPACE: join(dir, 'ws') } });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  beforeAll(() => {
    dir = temp('kd-bundle-run-');
    const b = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/build-cli.mjs')], { encoding: 'utf8', timeout: 120_000 });
    expect(b.status, b.stderr).toBe(0);
  }, 130_000);

  it('lists the sources it was built from, and bin/kubedos.mjs runs it', () => {
    const record = JSON.parse(readFileSync(join(REPO_ROOT, 'out/cli/kubedos.inputs.json'), 'utf8'));
    expect(record.inputs).toContain('main/cli/main.ts');
    expect(record.inputs).toContain('main/paths.ts');
    expect(record.inputs.some((f: string) => f.includes('node_modules'))).toBe(false);
    const r = kubedos('doctor', '--json');
    expect(JSON.parse(r.out).tools.length).toBeGreaterThan(0);
    expect(r.err).toContain('running the prebuilt bundle');
  });

  it('help and --version come from the stored texts, identical to what main() prints', async () => {
    const asks = [[], ['--help'], ['help'], ['-V'], ...COMMANDS.map((c) => [c.name, '--help']), ['plan', 'x.yaml', '-h']];
    for (const argv of asks) {
      const fast = kubedos(...argv);
      expect(fast.err, argv.join(' ')).toBe('kubedos: answered from the prebuilt help\n');
      const out: string[] = [];
      const code = await main(argv, { out: (t) => out.push(t.endsWith('\n') ? t : `${t}\n`), err: () => {}, cwd: dir, env: {}, signal: new AbortController().signal, isTty: false });
      expect(fast.out, argv.join(' ')).toBe(out.join(''));
      expect(fast.code, argv.join(' ')).toBe(code);
    }
    // Not a help request, or an unknown command: main() answers.
    expect(helpRequest(['frob'])).toBeUndefined();
    expect(kubedos('frob', '--help').err).toContain('unknown command "frob"');
  });

  it('init, validate, plan and a qemu-local dry run work from the bundle', () => {
    expect(kubedos('init', '--template', 'lab-3', 'lab.yaml').code).toBe(0);
    expect(readFileSync(join(dir, 'lab.yaml'), 'utf8')).toBe(TEMPLATES['lab-3'].text);
    const v = kubedos('validate', 'lab.yaml');
    expect(v.code, v.err).toBe(0);
    expect(v.err).toContain('running the prebuilt bundle');
    const p = kubedos('plan', 'lab.yaml');
    expect(p.code).toBe(0);
    expect(p.out).toMatch(/^3 nodes$/m);
    const d = kubedos('provision', 'lab.yaml', '--dry-run');
    expect(d.code, d.err).toBe(0);
    expect(d.out).toContain('## master (VMID 3000): create + start');
    expect(d.out).toContain('# dry run: nothing was changed on qemu-local');
  });

  it('main/paths.ts bundled into out/cli finds payload/, the L2 hub script and out/renderer of the checkout', async () => {
    // The CLI bundle exports only main(); bundle paths.ts the same way, to the same folder.
    const probe = join(REPO_ROOT, 'out/cli', `.paths-probe-${process.pid}.mjs`);
    try {
      await build({ absWorkingDir: REPO_ROOT, entryPoints: ['main/paths.ts'], outfile: probe, bundle: true, platform: 'node', format: 'esm', logLevel: 'silent' });
      const paths = (await import(pathToFileURL(probe).href)) as typeof Paths;
      expect(paths.appRoot()).toBe(REPO_ROOT);
      expect(paths.payloadDir()).toBe(join(REPO_ROOT, 'payload'));
      expect(paths.l2HubScript()).toBe(join(REPO_ROOT, 'main/substrate/l2-hub.mjs'));
      expect(existsSync(paths.l2HubScript())).toBe(true);
      expect(paths.rendererBuildDir()).toBe(join(REPO_ROOT, 'out/renderer'));
    } finally {
      rmSync(probe, { force: true });
    }
  });
});
