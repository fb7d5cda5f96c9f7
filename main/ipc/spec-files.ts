// Which spec files the workbench may read and write. The browser bridge may only touch YAML
// files inside its workspace directory, or the one SPEC given on the command line; Electron
// additionally allows files the user picked in a native dialog.
import { mkdirSync, readdirSync, readFileSync, realpathSync, statSync, writeFileSync, renameSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { MAX_SPEC_BYTES } from '../../common/spec/index';

export class SpecAccessError extends Error {
  readonly code = 'spec.access-denied';
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'SpecAccessError';
  }
}

export class SpecFiles {
  private readonly allowedFiles = new Set<string>();
  readonly workspace: string;

  constructor(workspace: string, specPath?: string) {
    this.workspace = resolve(workspace);
    if (specPath) this.allow(specPath);
  }

  /** A file the user chose explicitly (command line, native dialog). */
  allow(path: string): void {
    this.allowedFiles.add(resolve(path));
  }

  /** Resolves `path` (relative paths are relative to the workspace) and checks it is allowed. */
  check(path: string): string {
    const abs = resolve(this.workspace, path);
    if (!/\.ya?ml$/i.test(abs)) throw new SpecAccessError(`${path}: a ClusterSpec file must end in .yaml or .yml`);
    if (this.allowedFiles.has(abs)) return abs;
    // Resolve symlinks of the existing part so a link inside the workspace cannot point out of it.
    const root = safeRealpath(this.workspace);
    const parent = safeRealpath(dirname(abs));
    const real = join(parent, basename(abs));
    const rel = relative(root, real);
    if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) {
      throw new SpecAccessError(`${path} is outside the workspace ${this.workspace}`, `open or save specs inside ${this.workspace} (or start kubedos serve with --workspace DIR or a SPEC path)`);
    }
    return real;
  }

  read(path: string): { path: string; text: string } {
    const abs = this.check(path);
    let size: number;
    try {
      const st = statSync(abs);
      if (!st.isFile()) throw new SpecAccessError(`${path} is not a regular file`);
      size = st.size;
    } catch (err) {
      if (err instanceof SpecAccessError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new SpecAccessError(code === 'ENOENT' ? `${path} does not exist` : `cannot read ${path}: ${(err as Error).message}`, code === 'ENOENT' ? 'create it with "New from template" and Save' : undefined);
    }
    if (size > MAX_SPEC_BYTES) throw new SpecAccessError(`${path} is ${size} bytes, over the ${MAX_SPEC_BYTES / 1048576} MiB limit for a ClusterSpec`);
    const text = new TextDecoder('utf-8', { fatal: false }).decode(readFileSync(abs));
    return { path: abs, text };
  }

  /** Writes through a temporary file and a rename, so a crash never leaves half a spec. */
  write(path: string, text: string): { path: string; bytes: number } {
    const abs = this.check(path);
    mkdirSync(dirname(abs), { recursive: true });
    const tmp = `${abs}.${process.pid}.tmp`;
    const bytes = Buffer.byteLength(text);
    writeFileSync(tmp, text, { mode: 0o644 });
    renameSync(tmp, abs);
    return { path: abs, bytes };
  }

  /** YAML files directly in the workspace plus the allowed files, sorted. */
  list(): { path: string; bytes: number }[] {
    const out = new Map<string, number>();
    try {
      for (const name of readdirSync(this.workspace)) {
        if (!/\.ya?ml$/i.test(name)) continue;
        const p = join(this.workspace, name);
        const st = statSync(p);
        if (st.isFile()) out.set(p, st.size);
      }
    } catch {
      // The workspace may not exist yet; it is created on the first save.
    }
    for (const p of this.allowedFiles) {
      try {
        out.set(p, statSync(p).size);
      } catch {
        // A file named on the command line that does not exist yet can still be saved to.
        out.set(p, 0);
      }
    }
    return [...out].map(([path, bytes]) => ({ path, bytes })).sort((a, b) => a.path.localeCompare(b.path));
  }
}

function safeRealpath(p: string): string {
  // Walk up to the nearest existing ancestor, realpath it, and re-append the rest.
  let cur = p;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(cur), ...rest.reverse());
    } catch {
      const up = dirname(cur);
      if (up === cur) return p;
      rest.push(basename(cur));
      cur = up;
    }
  }
}
