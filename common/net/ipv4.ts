// IPv4 arithmetic for addressing plans. Addresses are unsigned 32-bit integers.

export interface Cidr {
  /** Network address (host bits zero). */
  readonly network: number;
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

export function parseIpv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    value = value * 256 + Number(part);
  }
  return value >>> 0;
}

export function formatIpv4(value: number): string {
  const v = value >>> 0;
  return [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `a.b.c.d/n`; host bits must be zero (a CIDR names a network, not a host). */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.split('/');
  if (addr === undefined || len === undefined || extra !== undefined) return undefined;
  if (!/^\d{1,2}$/.test(len)) return undefined;
  const prefix = Number(len);
  if (prefix > 32) return undefined;
  const ip = parseIpv4(addr);
  if (ip === undefined) return undefined;
  if ((ip & ~mask(prefix)) >>> 0 !== 0) return undefined;
  return { network: ip, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.network)}/${cidr.prefix}`;
}

export function cidrSize(cidr: Cidr): number {
  return 2 ** (32 - cidr.prefix);
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  return ((ip & mask(cidr.prefix)) >>> 0) === cidr.network;
}

export function cidrLast(cidr: Cidr): number {
  return (cidr.network + cidrSize(cidr) - 1) >>> 0;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.network <= cidrLast(b) && b.network <= cidrLast(a);
}

/** The address `offset` hosts into the network (offset 0 is the network address). */
export function hostAt(cidr: Cidr, offset: number): number {
  return (cidr.network + offset) >>> 0;
}

/** Splits a network into equal subnets of `prefix` bits. */
export function subnets(cidr: Cidr, prefix: number): Cidr[] {
  if (prefix < cidr.prefix) return [];
  const count = 2 ** (prefix - cidr.prefix);
  const step = 2 ** (32 - prefix);
  return Array.from({ length: count }, (_, i) => ({ network: (cidr.network + i * step) >>> 0, prefix }));
}
