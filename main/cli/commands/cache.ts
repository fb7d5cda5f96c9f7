// `kubedos cache`: what the content-addressed build cache holds, and evicting from it.
import { ArtifactCache } from '../../build/cache';
import { formatGiB, freeBytesAt } from '../../build/files';
import { cacheRoot } from '../../build/index';
import type { CliCommand } from '../command';
import { parseCommandArgs, UsageError } from '../command';
import { renderTable } from '../../../common/text/table';
import { plural } from '../../../common/text/plural';

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const DAY_MS = 86_400_000;

/** "10G", "512M", "1.5T", "1024" (bytes). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`not a size: "${text}" (use e.g. 10G, 512M)`);
  return Math.floor(Number(m[1]) * UNITS[m[2]!.toUpperCase()]!);
}

/** "7d", "12h", "30m". */
export function parseAge(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([dhm])$/.exec(text.trim());
  if (!m) throw new UsageError(`not an age: "${text}" (use e.g. 7d, 12h, 30m)`);
  return Number(m[1]) * { d: DAY_MS, h: 3_600_000, m: 60_000 }[m[2] as 'd' | 'h' | 'm'];
}

function age(ms: number): string {
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)}m`;
  if (ms < DAY_MS) return `${Math.round(ms / 3_600_000)}h`;
  return `${Math.round(ms / DAY_MS)}d`;
}

export const cacheCommand: CliCommand = {
  name: 'cache',
  summary: 'list the build cache (size, kind, last use) or prune it, least recently used first',
  usage: 'kubedos cache [list] [--json] | kubedos cache prune [--older-than AGE] [--max-size SIZE] [--dry-run]',
  help: [
    'The cache ($KUBEDOS_CACHE, default <workspace>/cache) holds every built artifact by the hash of its',
    'inputs: darksites, base root filesystems, payloads, ISOs, images. A build that finds its entry reuses it;',
    'nothing else ever deletes one, so old clusters and old payloads accumulate.',
    '  list                  entries, least recently used first, with the free space left on the disk',
    '  prune                 evict entries (and scratch left by builds that died):',
    '    --older-than AGE    every entry not used for AGE (7d, 12h, 30m)',
    '    --max-size SIZE     then more, oldest first, until the cache holds at most SIZE (10G, 512M)',
    '    --dry-run           only say what would go',
    'An evicted entry is rebuilt the next time a build needs it (the darksite then needs its .debs again:',
    'offline, keep the entries of the clusters you must be able to rebuild).',
  ].join('\n'),
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      'older-than': { type: 'string' },
      'max-size': { type: 'string' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    const [sub = 'list', extra] = positionals;
    if (extra || !['list', 'prune'].includes(sub)) throw new UsageError('expected `list` or `prune`');
    const cache = new ArtifactCache(cacheRoot(io.env));
    if (sub === 'list') {
      if (values['older-than'] || values['max-size'] || values['dry-run']) throw new UsageError('--older-than, --max-size and --dry-run belong to `prune`');
      const entries = cache.entries();
      const total = entries.reduce((n, e) => n + e.bytes, 0);
      const free = freeBytesAt(cache.root);
      if (values.json) {
        io.out(JSON.stringify({ root: cache.root, totalBytes: total, freeBytes: free, entries: entries.map(({ dir: _dir, ...e }) => e) }, null, 2));
        return 0;
      }
      const now = Date.now();
      io.out(renderTable(['key', 'kind', 'size', 'last used'], entries.map((e) => [e.key.slice(0, 16), e.kind, formatGiB(e.bytes), e.lastUsedMs ? `${age(now - e.lastUsedMs)} ago` : 'never'])));
      io.out(`${plural(entries.length, 'entry', 'entries')}, ${formatGiB(total)} in ${cache.root}; ${formatGiB(free)} free on that disk`);
      return 0;
    }
    if (!values['older-than'] && !values['max-size']) throw new UsageError('prune needs --older-than AGE and/or --max-size SIZE');
    const r = cache.prune({
      ...(values['older-than'] ? { olderThanMs: parseAge(values['older-than']) } : {}),
      ...(values['max-size'] ? { maxBytes: parseSize(values['max-size']) } : {}),
      dryRun: Boolean(values['dry-run']),
    });
    const verb = values['dry-run'] ? 'would remove' : 'removed';
    if (values.json) {
      io.out(JSON.stringify({ dryRun: Boolean(values['dry-run']), removed: r.removed.map(({ dir: _dir, ...e }) => e), keptBytes: r.keptBytes, scratchRemoved: r.scratchRemoved }, null, 2));
      return 0;
    }
    for (const e of r.removed) io.out(`${verb} ${e.kind} ${e.key.slice(0, 16)} (${formatGiB(e.bytes)})`);
    for (const s of r.scratchRemoved) io.out(`${verb} scratch tmp/${s}`);
    const freed = r.removed.reduce((n, e) => n + e.bytes, 0);
    io.out(`${verb} ${plural(r.removed.length, 'entry', 'entries')} (${formatGiB(freed)}) and ${plural(r.scratchRemoved.length, 'scratch dir')}; the cache keeps ${formatGiB(r.keptBytes)}`);
    return 0;
  },
};
