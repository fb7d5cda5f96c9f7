// Where a host tool is installed: its fixed path when it has one, else the first executable on
// PATH (plus /usr/sbin and /sbin, which a non-root PATH often lacks). Used by `kubedos doctor`
// and the deploy's host-capacity check.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { HostTool } from './tools';

export function findOnPath(tool: HostTool, env: NodeJS.ProcessEnv): string | undefined {
  const candidates = tool.path ? [tool.path] : [];
  for (const dir of (env.PATH ?? '').split(delimiter).concat(['/usr/sbin', '/sbin'])) if (dir) candidates.push(join(dir, tool.name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      /* next */
    }
  }
  return undefined;
}
