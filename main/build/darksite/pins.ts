// Pinned package lists (payload/packages/<role>.list, `name=version` per line) and the lock
// that records their resolved dependency closure. Pure: parsing and hashing only.
import { z } from 'zod';
import { NODE_ROLES } from '../../../common/spec/schema';
import type { NodeRole } from '../../../common/spec/schema';
import { sha256Hex } from '../../../common/canonical';

export interface Pin {
  name: string;
  version: string;
  /** Where it was declared, for error messages: "base.list:12". */
  origin: string;
}

export class PinError extends Error {}

const PKG = /^[a-z0-9][a-z0-9+.-]+$/;
const VER = /^[A-Za-z0-9.+~:-]+$/;

export function parsePins(file: string, text: string): Pin[] {
  const pins: Pin[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const m = /^([^=\s]+)=(\S+)$/.exec(line);
    if (!m || !PKG.test(m[1]!) || !VER.test(m[2]!)) throw new PinError(`${file}:${i + 1}: "${line}" is not a pin; write name=version (for example openssh-server=1:9.2p1-2+deb12u7)`);
    pins.push({ name: m[1]!, version: m[2]!, origin: `${file}:${i + 1}` });
  });
  return pins;
}

export interface PinSet {
  base: Pin[];
  roles: Record<NodeRole, Pin[]>;
  /** sha256 over every list's bytes: the lock is valid only for these pins. */
  sha256: string;
}

/** files: name → text for base.list and <role>.list (a missing role list means no extras). */
export function pinSet(files: Record<string, string>): PinSet {
  const base = parsePins('base.list', files['base.list'] ?? '');
  if (!base.length) throw new PinError('payload/packages/base.list is missing or empty: every node needs the base set');
  const roles = {} as Record<NodeRole, Pin[]>;
  for (const r of NODE_ROLES) roles[r] = parsePins(`${r}.list`, files[`${r}.list`] ?? '');
  const names = Object.keys(files).filter((f) => f.endsWith('.list')).sort();
  const sha256 = sha256Hex(names.map((n) => `${n}\n${files[n]}`).join('\0'));
  return { base, roles, sha256 };
}

/** One locked package file of the darksite (.deb or installer .udeb). */
export const LockedFile = z.object({
  name: z.string(),
  version: z.string(),
  architecture: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  /** Pool file name (no host, no directory). */
  filename: z.string(),
});

export const LockedPackage = LockedFile.extend({
  roles: z.array(z.enum(NODE_ROLES)),
});
export type LockedPackage = z.infer<typeof LockedPackage>;

export const DarksiteLock = z.object({
  apiVersion: z.literal('kubedos.ca/v1alpha1'),
  kind: z.literal('DarksiteLock'),
  codename: z.string(),
  architecture: z.literal('amd64'),
  pinsSha256: z.string(),
  packages: z.array(LockedPackage),
});
export type DarksiteLock = z.infer<typeof DarksiteLock>;

/** Pure: the locked packages a set of roles needs, sorted by name. */
export function packagesFor(lock: DarksiteLock, roles: readonly NodeRole[]): LockedPackage[] {
  const want = new Set(roles);
  return lock.packages.filter((p) => p.roles.some((r) => want.has(r))).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Pure: "Inst name (version suite [arch])" lines of `apt-get -s install`. */
export function parseSimulation(stdout: string): { name: string; version: string; architecture: string }[] {
  const out: { name: string; version: string; architecture: string }[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^Inst (\S+) (?:\[[^\]]*\] )?\((\S+) .*\[(\S+)\]\)/.exec(line);
    if (m) out.push({ name: m[1]!, version: m[2]!, architecture: m[3]! });
  }
  return out;
}

/** Pure: the stanzas of `apt-cache show name=version…`: what the lock records per package. */
export function parseShow(stdout: string): { name: string; version: string; architecture: string; filename: string; size: number; sha256: string }[] {
  const out: { name: string; version: string; architecture: string; filename: string; size: number; sha256: string }[] = [];
  for (const stanza of stdout.split(/\n\n+/)) {
    const f = (k: string): string | undefined => new RegExp(`^${k}: (.*)$`, 'm').exec(stanza)?.[1]?.trim();
    const name = f('Package');
    const version = f('Version');
    const architecture = f('Architecture');
    const filename = f('Filename');
    const size = f('Size');
    const sha256 = f('SHA256');
    if (name && version && architecture && filename && size && sha256) out.push({ name, version, architecture, filename: filename.split('/').pop()!, size: Number(size), sha256 });
  }
  return out;
}

/** Pure: which pin an apt error is about, so the message can name it. */
export function unresolvedPins(stderr: string, pins: readonly Pin[]): Pin[] {
  const bad: Pin[] = [];
  for (const p of pins) {
    if (stderr.includes(`Version '${p.version}' for '${p.name}' was not found`) || new RegExp(`Unable to locate package ${p.name.replace(/[.+]/g, '\\$&')}\\b`).test(stderr) || stderr.includes(`Package '${p.name}' has no installation candidate`)) bad.push(p);
  }
  return bad;
}
