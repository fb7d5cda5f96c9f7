// Resolves "HOST" the way `ssh HOST` would: ~/.ssh/config (Host aliases, HostName, User, Port,
// IdentityFile, ProxyJump), then defaults. `Match exec` is never evaluated (it would run a
// shell command from a config file we only read).
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import SSHConfig from 'ssh-config';
import { SubstrateError } from './driver';
import { HOST_NAME_PATTERN } from '../../common/net/host-name';

export interface SshTarget {
  /** What the user typed (alias). */
  alias: string;
  hostName: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** Hops before the target, outermost first (from ProxyJump). */
  jumps: SshTarget[];
}

export interface SshTargetOptions {
  configPath?: string;
  home?: string;
  /** Explicit user/port (from proxmox://user@host:port) win over the config. */
  user?: string;
  port?: number;
}

const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export function parseProxmoxUrl(target: string): { host: string; user?: string; port?: number } {
  // The host part is the one host-name rule (common/net/host-name.ts); a driver also takes the
  // user@ and :port spellings and a bracketed IPv6 literal, which the spec and the CLI do not.
  const m = new RegExp(`^proxmox://(?:([A-Za-z0-9._-]+)@)?(${HOST_NAME_PATTERN}|\\[[0-9a-fA-F:]+\\])(?::(\\d{1,5}))?/?$`).exec(target);
  if (!m) {
    throw new SubstrateError('bad-target', `not a Proxmox target: ${JSON.stringify(target)}`, {
      hint: 'write proxmox://HOST, proxmox://USER@HOST:PORT or proxmox://ALIAS where ALIAS is a Host in ~/.ssh/config',
    });
  }
  return { host: m[2] as string, ...(m[1] ? { user: m[1] } : {}), ...(m[3] ? { port: Number(m[3]) } : {}) };
}

export function resolveSshTarget(alias: string, options: SshTargetOptions = {}, depth = 0): SshTarget {
  if (depth > 5) throw new SubstrateError('ssh-config', `ProxyJump chain for ${alias} is longer than 5 hops (loop?)`, { hint: 'check ProxyJump in ~/.ssh/config' });
  const home = options.home ?? homedir();
  const configPath = options.configPath ?? join(home, '.ssh', 'config');
  const computed = existsSync(configPath) ? SSHConfig.parse(readFileSync(configPath, 'utf8')).compute(alias, { ignoreCase: true, matchExec: false }) : {};
  const get = (k: string): string | undefined => {
    const val = computed[k.toLowerCase()];
    return Array.isArray(val) ? val[0] : val;
  };
  const expand = (p: string): string => resolve(p.replace(/^~(?=\/|$)/, home).replace(/%d/g, home).replace(/%u/g, userInfo().username).replace(/%h/g, get('hostname') ?? alias));
  const files = computed.identityfile;
  const identityFiles = files ? (Array.isArray(files) ? files : [files]).map(expand) : DEFAULT_IDENTITIES.map((f) => join(home, '.ssh', f));
  const portText = options.port ?? get('port');
  const port = portText === undefined ? 22 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SubstrateError('ssh-config', `bad Port ${String(portText)} for ${alias}`, { hint: `fix Port in ${configPath}` });
  const jumpSpec = get('proxyjump');
  const jumps: SshTarget[] = [];
  if (jumpSpec && jumpSpec.toLowerCase() !== 'none') {
    for (const hop of jumpSpec.split(',')) {
      const m = /^(?:ssh:\/\/)?(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(hop.trim());
      if (!m) throw new SubstrateError('ssh-config', `cannot read ProxyJump ${JSON.stringify(hop)} for ${alias}`, { hint: `fix ProxyJump in ${configPath}` });
      const sub = resolveSshTarget(m[2] as string, { configPath, home, ...(m[1] ? { user: m[1] } : {}), ...(m[3] ? { port: Number(m[3]) } : {}) }, depth + 1);
      jumps.push(...sub.jumps, { ...sub, jumps: [] });
    }
  }
  return {
    alias,
    hostName: get('hostname')?.replace(/%h/g, alias) ?? alias,
    port,
    user: options.user ?? get('user') ?? userInfo().username,
    identityFiles,
    jumps,
  };
}
