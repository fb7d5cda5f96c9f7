// --target parsing: qemu-local, or proxmox://HOST where HOST is an ~/.ssh/config alias or a host name.
// The shape is the contract's one Target schema (common/contract/deploy.ts), used by the CLI, the
// engine and the workbench alike.
import type { DeployTarget } from '../common/contract/deploy';
import type { ClusterSpec } from '../common/spec/schema';
import { HOST_NAME_PATTERN } from '../common/net/host-name';

export type Target = DeployTarget;

const PROXMOX_TARGET = new RegExp(`^proxmox://(${HOST_NAME_PATTERN})$`);

export function parseTarget(text: string | undefined, fallback?: Target): Target {
  if (text === undefined) {
    if (fallback) return fallback;
    throw new Error('--target is required: qemu-local or proxmox://HOST');
  }
  if (text === 'qemu-local') return { kind: 'qemu-local' };
  const m = PROXMOX_TARGET.exec(text);
  if (m?.[1]) return { kind: 'proxmox', host: m[1] };
  throw new Error(`unknown target "${text}": use qemu-local or proxmox://HOST (an ~/.ssh/config Host alias or a host name)`);
}

export function formatTarget(t: Target): string {
  return t.kind === 'qemu-local' ? 'qemu-local' : `proxmox://${t.host}`;
}

/** No --target and nothing in the spec to take one from; `hint` says how to set one. */
export class TargetNotSetError extends Error {
  readonly hint = 'set spec.substrate.proxmox.host to the ~/.ssh/config Host alias of your Proxmox node, or pass --target proxmox://HOST (--target qemu-local runs the VMs on this machine)';
  constructor() {
    super('no target is set: the spec names no Proxmox host (spec.substrate.proxmox.host) and no --target was given');
  }
}

/**
 * The target a command acts on: --target when given, else the spec's substrate (qemu ->
 * qemu-local, proxmox -> proxmox://<spec.substrate.proxmox.host>). `deploy` and `provision`
 * both call this. `loose` keeps provision's proxmox://USER@HOST:PORT (its driver parses it).
 */
export function targetOf(spec: ClusterSpec, text: string | undefined, opts: { loose?: boolean } = {}): Target {
  if (text !== undefined) {
    if (opts.loose && text.startsWith('proxmox://') && text.length > 'proxmox://'.length && text !== 'proxmox://') return { kind: 'proxmox', host: text.slice('proxmox://'.length) };
    return parseTarget(text);
  }
  const sub = spec.spec.substrate;
  if (sub.type === 'qemu') return { kind: 'qemu-local' };
  if (!sub.proxmox?.host) throw new TargetNotSetError();
  return { kind: 'proxmox', host: sub.proxmox.host };
}
