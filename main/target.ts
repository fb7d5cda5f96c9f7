// --target parsing: qemu-local, or proxmox://HOST where HOST is an ~/.ssh/config alias or a host name.
// The shape is the contract's one Target schema (common/contract/deploy.ts), used by the CLI, the
// engine and the workbench alike.
import type { DeployTarget } from '../common/contract/deploy';
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
