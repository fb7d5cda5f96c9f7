// Where the Debian archive is: read from this machine's apt sources at run time, never written
// into the project. Only entries for the target release's suites are taken (other vendors'
// repositories on the host are ignored).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
  signedBy?: string;
}

/** Pure: parse one-line (sources.list) and deb822 (*.sources) text into deb entries. */
export function parseAptSources(text: string, deb822: boolean): AptSource[] {
  const out: AptSource[] = [];
  if (!deb822) {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*$/, '').trim();
      const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
      if (!m) continue;
      const signedBy = /signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
      out.push({ uri: m[2]!, suite: m[3]!, components: (m[4] ?? '').split(/\s+/).filter(Boolean), ...(signedBy ? { signedBy } : {}) });
    }
    return out;
  }
  for (const para of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = '';
    for (const raw of para.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last) {
        fields.set(last, `${fields.get(last)} ${raw.trim()}`);
        continue;
      }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (m) {
        last = m[1]!.toLowerCase();
        fields.set(last, m[2]!.trim());
      }
    }
    if (fields.get('enabled') === 'no') continue;
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    const signedBy = fields.get('signed-by');
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) {
      for (const suite of (fields.get('suites') ?? '').split(/\s+/).filter(Boolean)) {
        out.push({ uri, suite, components: (fields.get('components') ?? '').split(/\s+/).filter(Boolean), ...(signedBy && !signedBy.includes('\n') ? { signedBy } : {}) });
      }
    }
  }
  return out;
}

/** Pure: the entries serving codename, codename-updates and codename-security with main. */
export function debianSources(all: readonly AptSource[], codename: string): AptSource[] {
  const suites = new Set([codename, `${codename}-updates`, `${codename}-security`]);
  return all.filter((s) => suites.has(s.suite) && s.components.includes('main') && /^(https?|file):/.test(s.uri));
}

export function readHostAptSources(root = '/etc/apt'): AptSource[] {
  const all: AptSource[] = [];
  const list = join(root, 'sources.list');
  if (existsSync(list)) all.push(...parseAptSources(readFileSync(list, 'utf8'), false));
  const dir = join(root, 'sources.list.d');
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      if (f.endsWith('.list')) all.push(...parseAptSources(readFileSync(join(dir, f), 'utf8'), false));
      else if (f.endsWith('.sources')) all.push(...parseAptSources(readFileSync(join(dir, f), 'utf8'), true));
    }
  }
  return all;
}

/** The host's Debian archive for codename, or an actionable error. */
export function hostDebianSources(codename: string, root = '/etc/apt'): AptSource[] {
  const found = debianSources(readHostAptSources(root), codename);
  if (!found.some((s) => s.suite === codename)) {
    throw new Error(
      `no apt source for Debian ${codename} main in ${root}/sources.list or ${root}/sources.list.d/: the darksite needs a mirror to resolve and download packages. ` +
        'Add one (or build with --offline from a filled cache).',
    );
  }
  return found;
}

function debLine(s: AptSource, suite: string, component: string): string {
  return `deb [arch=amd64${s.signedBy ? ` signed-by=${s.signedBy}` : ''}] ${s.uri} ${suite} ${component}\n`;
}

/** Pure: the sources.list text our private apt configuration uses. */
export function renderSourcesList(sources: readonly AptSource[]): string {
  return sources.map((s) => debLine(s, s.suite, 'main')).join('');
}

/** Pure: the installer's udeb index of the codename (main/debian-installer) from the first
 * source serving the codename itself (the udeb suite the installer reads; -updates and
 * -security carry other versions the netboot initrd was not built with). */
export function renderUdebSourcesList(sources: readonly AptSource[], codename: string): string {
  const s = sources.find((x) => x.suite === codename);
  if (!s) throw new Error(`no apt source for Debian ${codename} main: the installer udebs need the archive once (or --offline with a filled cache)`);
  return debLine(s, codename, 'main/debian-installer');
}
