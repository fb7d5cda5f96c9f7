// Which host to reach, wherever one is named — the spec's substrate.proxmox.host, the wizard's
// field, the contract's DeployTarget, `--target proxmox://HOST`, the ~/.ssh/config hosts listed
// for the wizard: an ~/.ssh/config Host alias or a host name. No user@ and no :port — another
// user or port goes into a Host entry in ~/.ssh/config, so ssh itself stays the one authority.

/** The characters of a host name, for embedding in larger patterns (proxmox://HOST). */
export const HOST_NAME_PATTERN = '[A-Za-z0-9][A-Za-z0-9._-]*';
export const HOST_NAME = new RegExp(`^${HOST_NAME_PATTERN}$`);
/** What the rule allows, in words, for error messages. */
export const HOST_NAME_RULE = 'letters, digits, ".", "_", "-"';

export function isHostName(text: string): boolean {
  return HOST_NAME.test(text);
}
