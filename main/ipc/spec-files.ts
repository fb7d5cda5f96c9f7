// Which spec files the workbench may read and write. The browser bridge may only touch visible
// YAML files directly inside its dedicated workspace folder, or the one SPEC given on the command
// line; Electron additionally allows files the user picked in a native dialog. Links are never
// followed on open, and a save never writes through one.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve, sep } from 'node:path';
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

/** A name the workspace may hold: a .yaml/.yml file directly in it, not hidden. */
const WORKSPACE_NAME = /^[^./\\][^/\\]*\.ya?ml$/i;

export class SpecFiles {
  private readonly allowedFiles = new Set<string>();
  readonly workspace: string;

  constructor(workspace: string, specPath?: string) {
    this.workspace = resolve(workspace);
    if (specPath) this.allow(specPath);
  }

  /** A file the user chose explicitly (command line, native dialog). */
  allow(path: string): void {
    // The file itself, not a link to it: reads and saves never follow a link later.
    this.allowedFiles.add(safeRealpath(resolve(path)));
  }

  /**
   * Resolves `path` (relative paths are relative to the workspace) and checks it is allowed: a
   * file the user chose, or a visible .yaml/.yml file directly in the workspace folder — no
   * subfolders, no dot-files, nothing reached through a link (security issue 16, items 4 and 5).
   */
  check(path: string): string {
    const abs = resolve(this.workspace, path);
    if (!/\.ya?ml$/i.test(abs)) throw new SpecAccessError(`${path}: a ClusterSpec file must end in .yaml or .yml`);
    if (this.allowedFiles.has(abs)) return abs;
    const hint = `open or save .yaml files directly inside ${this.workspace} (no subfolders or dot-files), or start kubedos serve with --workspace DIR or a SPEC path`;
    if (dirname(abs) !== this.workspace) {
      const inside = abs.startsWith(`${this.workspace}${sep}`);
      throw new SpecAccessError(inside ? `${path} is in a subfolder of the workspace ${this.workspace}; only files directly in it are open to the workbench` : `${path} is outside the workspace ${this.workspace}`, hint);
    }
    if (!WORKSPACE_NAME.test(basename(abs))) throw new SpecAccessError(`${path} is a hidden file; the workbench opens only visible .yaml files of the workspace ${this.workspace}`, hint);
    return join(safeRealpath(this.workspace), basename(abs));
  }

  read(path: string): { path: string; text: string } {
    const abs = this.check(path);
    let fd: number;
    try {
      // O_NOFOLLOW: a link planted at the name is refused (ELOOP), never followed.
      fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new SpecAccessError(`${path} is a symbolic link; open the file it points to by its own path`);
      throw new SpecAccessError(code === 'ENOENT' ? `${path} does not exist` : `cannot read ${path}: ${(err as Error).message}`, code === 'ENOENT' ? 'create it with "New from template" and Save' : undefined);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new SpecAccessError(`${path} is not a regular file`);
      if (st.size > MAX_SPEC_BYTES) throw new SpecAccessError(`${path} is ${st.size} bytes, over the ${MAX_SPEC_BYTES / 1048576} MiB limit for a ClusterSpec`);
      const text = new TextDecoder('utf-8', { fatal: false }).decode(readFileSync(fd));
      return { path: abs, text };
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Writes through a fresh temporary file (O_CREAT|O_EXCL|O_NOFOLLOW, so a planted link is never
   * written through) and a rename, so a crash never leaves half a spec. A link at the target
   * name is refused rather than replaced.
   */
  write(path: string, text: string): { path: string; bytes: number } {
    const abs = this.check(path);
    try {
      if (lstatSync(abs).isSymbolicLink()) throw new SpecAccessError(`${path} is a symbolic link; save to the file it points to by its own path`);
    } catch (err) {
      if (err instanceof SpecAccessError) throw err;
    }
    if (!this.allowedFiles.has(abs)) mkdirSync(dirname(abs), { recursive: true });
    const tmp = `${abs}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    const bytes = Buffer.byteLength(text);
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      writeFileSync(fd, text);
    } finally {
      closeSync(fd);
    }
    try {
      renameSync(tmp, abs);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    return { path: abs, bytes };
  }

  /** YAML files directly in the workspace plus the allowed files, sorted. */
  list(): { path: string; bytes: number }[] {
    const out = new Map<string, number>();
    try {
      for (const name of readdirSync(this.workspace)) {
        if (!WORKSPACE_NAME.test(name)) continue;
        const p = join(this.workspace, name);
        const st = lstatSync(p);
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
