// Reads the payload sources from the repository's payload/ directory (the I/O half of render.ts).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_ROLES } from '../../../common/spec/schema';
import type { NodeRole } from '../../../common/spec/schema';
import type { PayloadFile, PayloadSources } from './render';

export function loadPayloadSources(payloadDir: string): PayloadSources {
  const preseedBase = readFileSync(join(payloadDir, 'preseed/base.cfg'), 'utf8');
  const preseedRoles: Partial<Record<NodeRole, string>> = {};
  for (const r of NODE_ROLES) {
    const p = join(payloadDir, 'preseed/roles', `${r}.cfg`);
    if (existsSync(p)) preseedRoles[r] = readFileSync(p, 'utf8');
  }
  const files: PayloadFile[] = [];
  for (const dir of ['firstboot', 'backplane']) {
    const d = join(payloadDir, dir);
    if (!existsSync(d)) continue;
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = statSync(p);
      // Only shipped files: no caches, no tests, no editor droppings.
      if (!st.isFile() || name.startsWith('.') || name.endsWith('.pyc') || /(^test_|\.test\.|_test\.py$)/.test(name)) continue;
      files.push({ path: `${dir}/${name}`, data: new Uint8Array(readFileSync(p)), mode: st.mode & 0o111 ? 0o755 : 0o644 });
    }
  }
  return { preseedBase, preseedRoles, files, ansible: loadTree(join(payloadDir, 'ansible'), 'ansible') };
}

/** Every shipped file under dir (sorted, recursive), as payload paths under prefix. */
function loadTree(dir: string, prefix: string): PayloadFile[] {
  if (!existsSync(dir)) return [];
  const out: PayloadFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.') || name === '__pycache__' || name.endsWith('.pyc') || name.endsWith('.retry')) continue;
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isDirectory()) out.push(...loadTree(p, `${prefix}/${name}`));
    else if (st.isFile()) out.push({ path: `${prefix}/${name}`, data: new Uint8Array(readFileSync(p)), mode: st.mode & 0o111 ? 0o755 : 0o644 });
  }
  return out;
}
