// The Host entries of ~/.ssh/config, for the deploy wizard's target picker. Only concrete names
// are listed (a pattern with *, ? or ! is not a host one can pick); each is resolved the way
// `ssh ALIAS` would (main/substrate/ssh-target.ts) so the picker shows user@host:port.
import { existsSync, readFileSync, statSync } from 'node:fs';
import SSHConfig from 'ssh-config';
import type { DeployTargets, SshHostEntry } from '../../common/contract/index';
import { resolveSshTarget } from '../substrate/ssh-target';
import { HOST_NAME } from '../../common/net/host-name';

const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_HOSTS = 500;

interface ConfigLine {
  param?: string;
  value?: unknown;
}

function hostNames(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/\s+/).filter(Boolean);
  if (Array.isArray(value)) return value.map((v) => (typeof v === 'object' && v && 'val' in v ? String((v as { val: unknown }).val) : String(v)));
  return [];
}

export function listSshHosts(options: { configPath: string; knownHostsPath: string; home: string }): DeployTargets {
  const { configPath, knownHostsPath, home } = options;
  const out: DeployTargets = { sshConfigPath: configPath, sshConfigExists: existsSync(configPath), hosts: [], problems: [], knownHostsPath };
  if (!out.sshConfigExists) return out;
  let text: string;
  try {
    if (statSync(configPath).size > MAX_CONFIG_BYTES) {
      out.problems.push(`${configPath} is larger than 1 MiB; not read`);
      return out;
    }
    text = readFileSync(configPath, 'utf8');
  } catch (err) {
    out.problems.push(`cannot read ${configPath}: ${(err as Error).message}`);
    return out;
  }
  let lines: ConfigLine[];
  try {
    lines = SSHConfig.parse(text) as unknown as ConfigLine[];
  } catch (err) {
    out.problems.push(`cannot parse ${configPath}: ${(err as Error).message}`);
    return out;
  }
  const seen = new Set<string>();
  for (const line of lines) {
    if (line.param?.toLowerCase() === 'include') out.problems.push(`Include ${hostNames(line.value).join(' ')}: hosts in included files are not listed (type the alias instead)`);
    if (line.param?.toLowerCase() !== 'host') continue;
    for (const alias of hostNames(line.value)) {
      if (!HOST_NAME.test(alias) || seen.has(alias.toLowerCase())) continue;
      seen.add(alias.toLowerCase());
      if (out.hosts.length >= MAX_HOSTS) continue;
      try {
        const t = resolveSshTarget(alias, { configPath, home });
        const entry: SshHostEntry = { alias, hostName: t.hostName, port: t.port, user: t.user, jumps: t.jumps.map((j) => `${j.user}@${j.hostName}:${j.port}`) };
        out.hosts.push(entry);
      } catch (err) {
        out.problems.push(`Host ${alias}: ${(err as Error).message}`);
      }
    }
  }
  out.hosts.sort((a, b) => a.alias.localeCompare(b.alias));
  return out;
}
