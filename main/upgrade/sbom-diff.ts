// What moves from artifact N to N+1, read from the two builds' signed CycloneDX SBOMs: the Debian
// packages (name, architecture, version, as the darksite lock pinned them) and the payload files
// (by sha256). The package diff is the lock's own diff (diffLocks in darksite/pins.ts), so
// `kubedos upgrade` and `kubedos lock update` print a change the same way.
import { z } from 'zod';
import type { LockDiff } from '../build/darksite/pins';
import { diffLocks } from '../build/darksite/pins';

/** The part of an SBOM (main/build/attest.ts renderSbom) the diff reads. */
export const SbomDocument = z.object({
  bomFormat: z.literal('CycloneDX'),
  metadata: z.object({ component: z.object({ name: z.string(), version: z.string() }) }),
  components: z.array(
    z.object({
      type: z.string(),
      name: z.string(),
      version: z.string().optional(),
      hashes: z.array(z.object({ alg: z.string(), content: z.string() })).default([]),
      properties: z.array(z.object({ name: z.string(), value: z.string() })).default([]),
    }),
  ),
});
export type SbomDocument = z.infer<typeof SbomDocument>;

export interface PayloadDiff {
  added: string[];
  removed: string[];
  changed: string[];
}

export interface ArtifactDiff {
  packages: LockDiff;
  payload: PayloadDiff;
}

function packagesOf(sbom: SbomDocument): { name: string; architecture: string; version: string }[] {
  return sbom.components
    .filter((c) => c.type === 'library' && c.version !== undefined)
    .map((c) => ({ name: c.name, version: c.version!, architecture: c.properties.find((p) => p.name === 'kubedos:architecture')?.value ?? 'amd64' }));
}

function payloadOf(sbom: SbomDocument): Map<string, string> {
  return new Map(sbom.components.filter((c) => c.type === 'file').map((c) => [c.name, c.hashes.find((h) => h.alg === 'SHA-256')?.content ?? '']));
}

/** Pure: packages and payload files that differ between two SBOMs, each list sorted. */
export function diffSboms(before: SbomDocument, after: SbomDocument): ArtifactDiff {
  const a = payloadOf(before);
  const b = payloadOf(after);
  const sorted = (xs: string[]): string[] => xs.sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  return {
    packages: diffLocks(packagesOf(before), packagesOf(after)),
    payload: {
      added: sorted([...b.keys()].filter((f) => !a.has(f))),
      removed: sorted([...a.keys()].filter((f) => !b.has(f))),
      changed: sorted([...b.keys()].filter((f) => a.has(f) && a.get(f) !== b.get(f))),
    },
  };
}

/** Pure: the payload diff as lines ("~ payload/…", "+ …", "- …"), at most `max`. */
export function renderPayloadDiff(d: PayloadDiff, max = Infinity): string[] {
  const lines = [...d.changed.map((f) => `  ~ ${f}`), ...d.added.map((f) => `  + ${f}`), ...d.removed.map((f) => `  - ${f}`)];
  return lines.length <= max ? lines : [...lines.slice(0, max), `  … and ${lines.length - max} more (kubedos upgrade --json lists them all)`];
}
