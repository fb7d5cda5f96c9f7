// The installer's own components (udebs) on the darksite. The netboot installer
// (debian-installer-12-netboot-amd64 on the build host) loads everything beyond its initrd from
// the mirror's main/debian-installer index: kernel-module udebs for ITS kernel ABI, partman,
// base-installer, grub-installer, … Without them it stops at "No kernel modules were found".
//
// Selection mirrors what anna (the installer's udeb retriever) would take from the full archive,
// minus what the initrd already has: every udeb of priority required/important/standard whose
// kernel ABI (Kernel-Version) is the installer kernel's or none, the extras named in
// payload/packages/installer-udebs.txt (udebs installed on demand with anna-install), and the
// Depends closure of both. The result is locked (name, version, sha256, size) against the host
// initrd's sha256: a new netboot package means a new lock, and --offline needs the lock + cache.
import { gunzipSync } from 'node:zlib';
import { z } from 'zod';
import { sha256Hex } from '../../../common/canonical';
import { LockedFile } from './pins';

export const UDEB_LOCK_FILE = 'installer-udebs.lock.json';
export const UDEB_EXTRAS_FILE = 'installer-udebs.txt';

export type Stanza = Record<string, string>;

/** Pure: deb822 paragraphs (Packages, dpkg status) → field maps (field names as written). */
export function parseStanzas(text: string): Stanza[] {
  const out: Stanza[] = [];
  for (const para of text.split(/\n[ \t]*\n/)) {
    const s: Stanza = {};
    let last = '';
    for (const line of para.split('\n')) {
      if (!line.trim()) continue;
      if (/^[ \t]/.test(line)) {
        if (last) s[last] += `\n${line}`;
        continue;
      }
      const m = /^([^:\s]+):\s?(.*)$/.exec(line);
      if (!m) continue;
      last = m[1]!;
      s[last] = m[2]!;
    }
    if (s.Package) out.push(s);
  }
  return out;
}

/** Pure: the members of a newc cpio (possibly several archives back to back) that `want` picks. */
export function readNewc(buf: Uint8Array, want: (name: string) => boolean): Map<string, Buffer> {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = new Map<string, Buffer>();
  const align = (n: number): number => (n + 3) & ~3;
  let off = 0;
  while (off + 110 <= b.length) {
    // Padding between concatenated archives is zero bytes.
    if (b[off] === 0) {
      off++;
      continue;
    }
    const magic = b.toString('latin1', off, off + 6);
    if (magic !== '070701' && magic !== '070702') throw new Error(`initrd: not a newc cpio at byte ${off} (magic ${JSON.stringify(magic)})`);
    const field = (i: number): number => parseInt(b.toString('latin1', off + 6 + i * 8, off + 14 + i * 8), 16);
    const fileSize = field(6);
    const nameSize = field(11);
    const name = b.toString('utf8', off + 110, off + 110 + nameSize - 1).replace(/^\.\//, '');
    const dataStart = align(off + 110 + nameSize);
    if (name !== 'TRAILER!!!' && want(name)) out.set(name, Buffer.from(b.subarray(dataStart, dataStart + fileSize)));
    off = align(dataStart + fileSize);
  }
  return out;
}

export interface InstallerInfo {
  /** e.g. 6.1.0-50-amd64 */
  kernelAbi: string;
  /** Debian version of the kernel-image udeb, e.g. 6.1.176-1 */
  kernelVersion: string;
  /** name → version of every udeb unpacked in the initrd. */
  installed: Record<string, string>;
  /** Virtual names the installed udebs provide. */
  provides: string[];
}

/** Pure: what the installer initrd carries, from its /var/lib/dpkg/status. */
export function installerInfoFromStatus(status: string): InstallerInfo {
  const installed: Record<string, string> = {};
  const provides = new Set<string>();
  let kernelAbi = '';
  let kernelVersion = '';
  for (const s of parseStanzas(status)) {
    installed[s.Package!] = s.Version ?? '';
    for (const p of splitList(s.Provides)) provides.add(p.split(/[\s(]/)[0]!);
    const k = /^kernel-image-(.+)-di$/.exec(s.Package!);
    if (k) {
      if (kernelAbi && kernelAbi !== k[1]) throw new Error(`installer initrd: two kernel-image udebs (${kernelAbi}, ${k[1]})`);
      kernelAbi = k[1]!;
      kernelVersion = s.Version ?? '';
    }
  }
  if (!kernelAbi) throw new Error('installer initrd: no kernel-image-*-di udeb in /var/lib/dpkg/status; is this a Debian installer initrd?');
  return { kernelAbi, kernelVersion, installed, provides: [...provides].sort() };
}

/** Reads the dpkg status out of a gzip'd installer initrd. */
export function installerInfo(initrdGz: Uint8Array): InstallerInfo {
  const files = readNewc(gunzipSync(initrdGz), (n) => n === 'var/lib/dpkg/status');
  const status = files.get('var/lib/dpkg/status');
  if (!status) throw new Error('installer initrd: no var/lib/dpkg/status inside');
  return installerInfoFromStatus(status.toString('utf8'));
}

/** Pure: names listed one per line, # comments. */
export function parseExtras(text: string, file = UDEB_EXTRAS_FILE): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    if (!/^[a-z0-9][a-z0-9+.-]+$/.test(line)) throw new Error(`${file}:${i + 1}: "${line}" is not a udeb name (one name per line)`);
    out.push(line);
  });
  return out;
}

function splitList(v: string | undefined): string[] {
  return (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
}

export const LockedUdeb = LockedFile.extend({
  /** Why it is on the darksite: priority, extra (installer-udebs.txt) or dependency. */
  reason: z.enum(['priority', 'extra', 'dependency']),
});
export type LockedUdeb = z.infer<typeof LockedUdeb>;

export const UdebLock = z.object({
  apiVersion: z.literal('kubedos.ca/v1alpha1'),
  kind: z.literal('InstallerUdebLock'),
  codename: z.string(),
  architecture: z.literal('amd64'),
  installer: z.object({
    /** sha256 of the netboot initrd.gz the lock was resolved for. */
    initrdSha256: z.string().regex(/^[0-9a-f]{64}$/),
    kernelAbi: z.string(),
    kernelVersion: z.string(),
  }),
  /** sha256 of installer-udebs.txt. */
  extrasSha256: z.string(),
  udebs: z.array(LockedUdeb),
});
export type UdebLock = z.infer<typeof UdebLock>;

export function extrasSha256(text: string): string {
  return sha256Hex(text);
}

const WANTED_PRIORITIES = new Set(['required', 'important', 'standard']);

/** Kernel ABI a udeb is built for (Kernel-Version, or the -<abi>-di name suffix), or undefined. */
export function kernelAbiOf(s: Stanza): string | undefined {
  if (s['Kernel-Version']) return s['Kernel-Version'].trim();
  return /-(\d+\.\d+\.\d+-\d+-[a-z0-9-]+?)-di$/.exec(s.Package ?? '')?.[1];
}

export interface UdebSelection {
  udebs: LockedUdeb[];
  /** Extras named in installer-udebs.txt that the index does not have. */
  missingExtras: string[];
  /** Dependencies nothing in the index or the initrd satisfies: "pkg → dep". */
  unsatisfied: string[];
}

/**
 * Pure: the udebs the darksite must carry for this installer. index: the archive's
 * main/debian-installer Packages stanzas for the codename. Alternatives (a | b) take the first
 * that is installed or available; virtual names are satisfied by installed or selected providers
 * first, else the provider first by name. Version constraints are not checked (anna does not).
 */
export function selectUdebs(index: readonly Stanza[], info: InstallerInfo, extras: readonly string[]): UdebSelection {
  const usable = index.filter((s) => {
    const abi = kernelAbiOf(s);
    return (abi === undefined || abi === info.kernelAbi) && s.Architecture && ['amd64', 'all'].includes(s.Architecture);
  });
  const byName = new Map<string, Stanza>();
  for (const s of usable) {
    const prev = byName.get(s.Package!);
    // One version per name: an index lists each once; keep the first if it ever does not.
    if (!prev) byName.set(s.Package!, s);
  }
  const providers = new Map<string, string[]>();
  for (const s of byName.values()) {
    for (const p of splitList(s.Provides)) {
      const v = p.split(/[\s(]/)[0]!;
      providers.set(v, [...(providers.get(v) ?? []), s.Package!].sort());
    }
  }
  const installed = new Set([...Object.keys(info.installed), ...info.provides]);
  const chosen = new Map<string, LockedUdeb['reason']>();
  const missingExtras: string[] = [];
  const unsatisfied: string[] = [];
  const queue: string[] = [];
  const add = (name: string, reason: LockedUdeb['reason']): void => {
    if (chosen.has(name) || installed.has(name)) return;
    chosen.set(name, reason);
    queue.push(name);
  };
  for (const s of [...byName.values()].sort((a, b) => cmp(a.Package!, b.Package!))) {
    if (WANTED_PRIORITIES.has((s.Priority ?? '').trim())) add(s.Package!, 'priority');
  }
  for (const e of extras) {
    if (installed.has(e)) continue;
    if (byName.has(e)) add(e, 'extra');
    else missingExtras.push(e);
  }
  const satisfiedBy = (name: string): string | true | undefined => {
    if (installed.has(name)) return true;
    if (chosen.has(name)) return true;
    const provs = providers.get(name) ?? [];
    if (provs.some((p) => chosen.has(p) || installed.has(p))) return true;
    if (byName.has(name)) return name;
    return provs[0];
  };
  while (queue.length) {
    const name = queue.shift()!;
    const s = byName.get(name)!;
    for (const group of [...splitList(s.Depends), ...splitList(s['Pre-Depends'])]) {
      const alts = group.split('|').map((a) => a.trim().split(/[\s(]/)[0]!).filter(Boolean);
      let pick: string | undefined;
      let ok = false;
      for (const a of alts) {
        const r = satisfiedBy(a);
        if (r === true) {
          ok = true;
          break;
        }
        if (r && !pick) pick = r;
      }
      if (ok) continue;
      if (pick) add(pick, 'dependency');
      else unsatisfied.push(`${name} → ${group}`);
    }
  }
  const udebs = [...chosen.entries()]
    .map(([name, reason]) => {
      const s = byName.get(name)!;
      const sha256 = (s.SHA256 ?? '').trim();
      const size = Number(s.Size);
      if (!/^[0-9a-f]{64}$/.test(sha256) || !Number.isInteger(size)) throw new Error(`udeb index: ${name} has no SHA256/Size`);
      return { name, version: s.Version!.trim(), architecture: s.Architecture!.trim(), sha256, size, filename: (s.Filename ?? '').split('/').pop()!, reason };
    })
    .sort((a, b) => cmp(a.name, b.name));
  return { udebs, missingExtras, unsatisfied };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
