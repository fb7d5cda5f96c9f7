// `kubedos lock`: the cluster's darksite lock (the resolved closure of payload/packages/*.list),
// shown or re-resolved without building anything else.
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { plan } from '../../../common/plan/index';
import { payloadDir } from '../../paths';
import { cacheRoot, clusterLockPath } from '../../build/index';
import { ensureLock, lockDigest, readLists, readLock } from '../../build/darksite/index';
import { diffSummary, renderDiff } from '../../build/darksite/pins';
import { ensureUpstream } from '../../build/sources/apt';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { loadSpec, reportInvalidSpec } from '../load-spec';
import { plural } from '../../../common/text/plural';


export const lockCommand: CliCommand = {
  name: 'lock',
  summary: "show or update the cluster's darksite lock (exact package versions, hashes and sources)",
  usage: 'kubedos lock [show|update] --spec FILE [--source NAME]... [--json]',
  help: [
    'The package lists name packages; the lock is their resolved closure for this cluster, written by',
    "the first build into <workspace>/clusters/<name>/darksite.lock.json and carried in every darksite.",
    '  show     (default) where the lock is, its digest, package count, and whether the lists changed since',
    "  update   resolve the lists against today's archive, write the new lock and print what moved",
    '           (changed / added / removed with versions); the previous lock\'s digest goes into the',
    '           new lock and the next build\'s provenance.',
    '  update --source NAME   (repeatable) resolve only that declared apt source (spec.sources.apt) against',
    '           its signed repository and move its packages; the Debian packages and every other source',
    '           keep their locked versions and nothing else is asked (a foundry that reaches the vendor\'s',
    '           repository or its mirror but not a moving Debian archive). spec.sources.apt must be the',
    '           declaration the lock was resolved from.',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, { spec: { type: 'string' }, json: { type: 'boolean' }, source: { type: 'string', multiple: true } });
    const action = positionals[0] ?? 'show';
    if (!['show', 'update'].includes(action) || positionals.length > 1) throw new UsageError(`unknown lock action "${positionals.join(' ')}" (show, update)`);
    if (!values.spec) throw new UsageError('--spec FILE is required');
    const only = values.source ?? [];
    if (only.length && action !== 'update') throw new UsageError('--source NAME goes with lock update (it says which declared apt source to move)');
    const loaded = loadSpec(values.spec, io.cwd);
    if (!loaded.spec) {
      return reportInvalidSpec(loaded, values.spec, io);
    }
    const cluster = plan(loaded.spec).cluster.name;
    const lockPath = clusterLockPath(cluster, io.env);
    const packagesDir = join(payloadDir(), 'packages');
    try {
      if (action === 'show') {
        const lock = readLock(lockPath);
        const lists = readLists(packagesDir);
        if (!lock) {
          if (values.json) io.out(JSON.stringify({ path: lockPath, exists: false }, null, 2));
          else io.out(`${cluster}: no lock yet (${lockPath}); the first build resolves one, or: kubedos lock update --spec ${values.spec}`);
          return 0;
        }
        const info = { path: lockPath, exists: true, sha256: lockDigest(lock), packages: lock.packages.length, upstreamPackages: lock.upstream?.length ?? 0, listsChanged: lock.listsSha256 !== lists.sha256, sources: [...new Set(lock.packages.map((p) => p.source))].sort(), ...(lock.previous ? { previous: { sha256: lock.previous.sha256, reason: lock.previous.reason, summary: diffSummary(lock.previous.diff) } } : {}) };
        if (values.json) io.out(JSON.stringify(info, null, 2));
        else {
          io.out(`${cluster}: ${plural(info.packages, 'package')} from ${info.sources.join(', ')}${info.upstreamPackages ? ` and ${plural(info.upstreamPackages, 'upstream package')} from spec.sources.apt` : ''}; lock ${info.sha256.slice(0, 12)}… (${lockPath})`);
          io.out(info.listsChanged ? `the package lists changed since it was resolved: the next build resolves them again (keeping locked versions), or run kubedos lock update --spec ${values.spec}` : 'the package lists match it');
          if (info.previous) io.out(`it replaced ${info.previous.sha256.slice(0, 12)}… (${info.previous.reason}): ${info.previous.summary}`);
        }
        return 0;
      }
      // --source: the Debian part stays exactly as locked (the archive is not asked).
      const existing = only.length ? readLock(lockPath) : undefined;
      if (only.length && !existing) {
        io.err(`lock update --source ${only.join(', ')} refused: ${cluster} has no lock yet (${lockPath}); --source moves a locked source. Resolve one first: kubedos lock update --spec ${values.spec} (or build once)`);
        return 1;
      }
      const r = existing ? { lock: existing, written: false, resolved: false, diff: undefined, previousSha256: undefined } : await ensureLock({ packagesDir, lockPath, cacheDir: cacheRoot(io.env), mode: 'update', signal: io.signal, log: (l) => io.err(l) });
      // Declared upstream apt sources (spec.sources.apt): resolved again into the same lock.
      const up = await ensureUpstream(loaded.spec.spec.sources.apt, { lock: r.lock, lockPath, cacheDir: cacheRoot(io.env), mode: 'update', lockWrittenThisBuild: r.written, ...(only.length ? { only, acceptCommand: `kubedos lock update --spec ${values.spec}` } : {}), signal: io.signal, log: (l) => io.err(l) });
      if (values.json) {
        io.out(JSON.stringify({ path: lockPath, sha256: lockDigest(up.lock), packages: r.lock.packages.length, upstreamPackages: up.packages.length, written: r.written || up.written, ...(r.diff ? { diff: r.diff } : {}), ...(up.diff ? { upstreamDiff: up.diff } : {}), ...(r.previousSha256 ? { previousSha256: r.previousSha256 } : {}) }, null, 2));
        return 0;
      }
      if (up.packages.length || up.written) io.out(`${cluster}: ${plural(up.packages.length, 'upstream package')} from spec.sources.apt${up.written && up.diff ? `: ${diffSummary(up.diff)}` : ', unchanged'}`);
      if (up.written && up.diff) for (const l of renderDiff(up.diff)) io.out(l);
      if (existing) io.out(`${cluster}: Debian packages not resolved (--source ${only.join(', ')}): ${plural(r.lock.packages.length, 'package')} kept at their locked versions`);
      else if (!r.written) io.out(`${cluster}: the archive resolves exactly the locked versions; ${lockPath} unchanged (${plural(r.lock.packages.length, 'package')})`);
      else if (!r.diff) io.out(`${cluster}: lock created: ${plural(r.lock.packages.length, 'package')} (${lockPath})`);
      else {
        io.out(`${cluster}: lock updated: ${diffSummary(r.diff)}; previous lock ${r.previousSha256?.slice(0, 12)}… (recorded in the new lock and the next build's provenance)`);
        for (const l of renderDiff(r.diff)) io.out(l);
      }
      return 0;
    } catch (err) {
      io.err(`lock ${action} failed: ${(err as Error).message}`);
      if (existsSync(lockPath)) io.err(`(lock: ${lockPath})`);
      return 1;
    }
  },
};
