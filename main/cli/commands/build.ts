import { readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { plan } from '../../../common/plan/index';
import { NODE_ROLES } from '../../../common/spec/schema';
import type { NodeRole } from '../../../common/spec/schema';
import { sha256Of } from '../../build/files';
import type { BuildTarget } from '../../build/index';
import { ALL_TARGETS, buildLogPath, runBuild } from '../../build/index';
import { CommandError } from '../../exec/runner';
import { appRoot, payloadDir } from '../../paths';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';
import { plural } from '../../../common/text/plural';


export const buildCommand: CliCommand = {
  name: 'build',
  summary: 'build the artifact: darksite apt repo, role ISOs, qcow2 images, manifest, SBOM, provenance, signatures',
  usage: 'kubedos build [darksite|iso|image]... --spec FILE --out DIR [--role ROLE]... [--update|--frozen|--offline] [--from DIR] [--rebuild] [--installer-mirror HOST/DIR] [--netinst ISO] [--installer-udebs] [--json]',
  help: [
    'Without a target, builds all three. Unchanged inputs are taken from the content-addressed cache',
    '(<workspace>/cache, or $KUBEDOS_CACHE); a corrupted cache entry is detected by hash and rebuilt.',
    '  --spec FILE               the ClusterSpec',
    '  --out DIR                 output directory (manifest.json, sbom.cdx.json, provenance.intoto.json, signatures/, darksite/, iso/, images/, payload/)',
    '  --role ROLE               only these roles (repeatable; default: every role in the plan)',
    'The package lists (payload/packages/*.list) name packages; their resolved closure is the cluster\'s lock',
    '(<workspace>/clusters/<name>/darksite.lock.json), written by the first build and carried in the darksite.',
    'By default every locked version is reused (cache, then the archive); a version the archive no longer serves',
    'stops the build with the list of what moved and the command that accepts it (never a silent change).',
    '  --update                  resolve the lists again, write the new lock and print the diff (kubedos lock update)',
    '  --frozen                  the lock must be satisfied exactly (cache or archive); changed lists are refused',
    '  --offline                 never touch the network: the lock and the .deb cache (or --from) must be complete',
    '  --from DIR                take the lock and .debs of an earlier build (or bundle) first: rebuild it exactly',
    '  --rebuild                 ignore cached artifacts: build everything again (reproducibility checks)',
    '  --installer-mirror H/DIR  where installers fetch the darksite over HTTP (default for qemu: 10.0.2.100/darksite via guestfwd)',
    '  --netinst ISO             remaster this Debian netinst ISO instead of using the netboot kernel/initrd',
    '  --no-poweroff             installers reboot into the installed system instead of powering off',
    '  --installer-udebs         put the netboot installer\'s udebs (its kernel ABI; payload/packages/installer-udebs.lock.json) on the darksite for a full install',
    'SOURCE_DATE_EPOCH fixes every timestamp; default: the last commit touching payload/ or main/build/.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      spec: { type: 'string' },
      out: { type: 'string', short: 'o' },
      role: { type: 'string', multiple: true },
      offline: { type: 'boolean' },
      frozen: { type: 'boolean' },
      update: { type: 'boolean' },
      from: { type: 'string' },
      rebuild: { type: 'boolean' },
      'installer-mirror': { type: 'string' },
      netinst: { type: 'string' },
      'no-poweroff': { type: 'boolean' },
      'installer-udebs': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    const targets = positionals.length ? positionals : [...ALL_TARGETS];
    for (const t of targets) if (!ALL_TARGETS.includes(t as BuildTarget)) throw new UsageError(`unknown target "${t}" (darksite, iso, image)`);
    if (!values.spec) throw new UsageError('--spec FILE is required');
    if (!values.out) throw new UsageError('--out DIR is required');
    const roles = (values.role ?? []) as string[];
    for (const r of roles) if (!(NODE_ROLES as readonly string[]).includes(r)) throw new UsageError(`unknown role "${r}" (${NODE_ROLES.join(', ')})`);
    let mirror: { host: string; directory: string } | undefined;
    if (values['installer-mirror']) {
      const m = /^([A-Za-z0-9.-]+(?::\d+)?)(\/.*)$/.exec(values['installer-mirror']);
      if (!m) throw new UsageError('--installer-mirror must look like HOST[:PORT]/DIRECTORY');
      mirror = { host: m[1]!, directory: m[2]!.replace(/\/$/, '') };
    }
    const modes = (['update', 'frozen', 'offline'] as const).filter((m) => values[m]);
    if (modes.length > 1) throw new UsageError(`--${modes.join(' and --')} exclude each other`);
    if (values.from && values.update) throw new UsageError('--from rebuilds an earlier lock exactly; --update resolves a new one: choose one');
    const loaded = loadSpec(values.spec, io.cwd, { completeness: true });
    if (!loaded.spec) {
      return reportInvalidSpec(loaded, values.spec, io, 'nothing built');
    }
    const p = plan(loaded.spec);
    try {
      const report = await runBuild({
        spec: loaded.spec,
        specPath: values.spec,
        specSha256: sha256Of(readFileSync(loaded.path)),
        plan: p,
        outDir: values.out.startsWith('/') ? values.out : `${io.cwd}/${values.out}`,
        repoRoot: appRoot(),
        payloadDir: payloadDir(),
        targets: targets as BuildTarget[],
        roles: roles as NodeRole[],
        lockMode: modes[0] ?? 'default',
        ...(values.from ? { from: resolvePath(io.cwd, values.from) } : {}),
        acceptCommand: `kubedos lock update --spec ${values.spec}`,
        rebuild: values.rebuild,
        installerMirror: mirror,
        netinstIso: values.netinst,
        installerUdebs: values['installer-udebs'],
        ...(values['no-poweroff'] ? { poweroff: false } : {}),
        env: io.env,
        log: (l) => io.err(l),
        signal: io.signal,
      });
      if (values.json) {
        io.out(JSON.stringify({ ...report, outputs: report.outputs.filter((o) => o.kind === 'iso' || o.kind === 'image') }, null, 2));
        return 0;
      }
      for (const o of report.outputs) if (o.kind === 'iso' || o.kind === 'image') io.out(`${o.sha256}  ${o.path}  (${(o.size / 1048576).toFixed(1)} MiB)`);
      const ds = report.outputs.filter((o) => o.kind === 'darksite' && o.path.endsWith('.deb')).length;
      if (report.lock.written) {
        io.out(report.lock.diffSummary ? `lock updated: ${report.lock.diffSummary} (previous ${report.lock.previousSha256?.slice(0, 12)}…, recorded in the provenance)` : `lock created: ${plural(report.lock.packages, 'package')}`);
        for (const l of report.lock.diff ?? []) io.out(l);
      }
      const u = report.upstream;
      io.out(`Debian packages ${report.lock.packages}, upstream packages ${u.packages}, images ${u.images}, files ${u.files}`);
      io.out(
        `built ${report.built.length ? report.built.join(', ') : 'nothing (all cached)'}; reused ${report.reused.length}; darksite ${ds} packages, downloaded ${report.downloaded}; ` +
          `roles ${report.roles.join(', ')}; lock ${report.lock.sha256.slice(0, 12)}…; ${(report.durationMs / 1000).toFixed(2)} s → ${report.outDir}`,
      );
      return 0;
    } catch (err) {
      if (err instanceof CommandError) {
        io.err(`build failed: ${err.message}`);
        if (err.hint) io.err(`hint: ${err.hint}`);
        return 1;
      }
      io.err(`build failed: ${(err as Error).message}`);
      io.err(`(full log: ${buildLogPath(p.cluster.name, io.env)})`);
      return 1;
    }
  },
};
