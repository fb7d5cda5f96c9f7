// The artifact version and boot slot each node runs, as the topology's node boxes show them from
// the live report: which nodes are behind the newest version read (mid-upgrade, or a node the
// upgrade stopped at). Only what the nodes' exporters served: a node whose version was not read
// is neither newest nor behind. Pure.
import { compareArtifactVersions, parseArtifactVersion } from '../upgrade/version';
import type { LiveNodeHealth } from './now';

export interface NodeVersionLine {
  version: string;
  /** a / b / single / unknown, as served. */
  slot: string;
  /** Another version than the newest read (only when the nodes read disagree). */
  behind: boolean;
  /** The nodes read do not all run one version. */
  mixed: boolean;
  /** The newest version read on the cluster. */
  newest: string;
}

/** Per node whose artifact was read: its version line; nodes not read are absent. */
export function nodeVersionLines(nodes: readonly Pick<LiveNodeHealth, 'name' | 'artifact'>[]): Record<string, NodeVersionLine> {
  const read = nodes.flatMap((n) => (n.artifact.read ? [{ name: n.name, version: n.artifact.version, slot: n.artifact.slot }] : []));
  // A version that is not MAJOR.MINOR.PATCH cannot be ordered: it is shown, never judged behind.
  const ordered = read.filter((r) => parseArtifactVersion(r.version)).map((r) => r.version);
  const newest = ordered.reduce<string | undefined>((a, v) => (a === undefined || compareArtifactVersions(v, a) > 0 ? v : a), undefined);
  const mixed = new Set(read.map((r) => r.version)).size > 1;
  return Object.fromEntries(
    read.map((r) => [
      r.name,
      { version: r.version, slot: r.slot, mixed, newest: newest ?? r.version, behind: mixed && newest !== undefined && parseArtifactVersion(r.version) !== undefined && compareArtifactVersions(r.version, newest) < 0 },
    ]),
  );
}

/** The slot as the node box says it: "slot b", "one root" (no A/B), "slot ?". */
export function slotText(slot: string): string {
  return slot === 'single' ? 'one root' : slot === 'unknown' ? 'slot ?' : `slot ${slot}`;
}
