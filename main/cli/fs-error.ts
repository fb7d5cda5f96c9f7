// File-system errors in the user's words: "file not found: PATH" instead of Node's
// "ENOENT: no such file or directory, stat 'PATH'".
const WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EEXIST: 'already exists',
  ENOSPC: 'no space left on the device',
  EROFS: 'read-only file system',
  EMFILE: 'too many open files',
};

/** true for a Node file-system error (it has a code and a path). */
export function isFsError(err: unknown): err is NodeJS.ErrnoException & { path: string } {
  const e = err as NodeJS.ErrnoException | undefined;
  return typeof e?.code === 'string' && typeof e.path === 'string' && /^E[A-Z]+$/.test(e.code);
}

/** "file not found: PATH", "PATH: permission denied", … for a file-system error; the message otherwise. */
export function fsErrorText(err: unknown): string {
  if (!isFsError(err)) return (err as Error)?.message ?? String(err);
  const code = err.code ?? '';
  if (code === 'ENOENT') return `file not found: ${err.path}`;
  return `${err.path}: ${WORDS[code] ?? code.toLowerCase()}`;
}

/** The next step for a file-system error, when there is an obvious one. */
export function fsErrorHint(err: unknown): string | undefined {
  if (!isFsError(err)) return undefined;
  switch (err.code) {
    case 'ENOENT':
      return 'check the path (relative to the current directory); a file to be written needs its directory to exist';
    case 'EACCES':
    case 'EPERM':
      return 'check the file\'s owner and mode, or choose a path you can write to';
    case 'ENOTDIR':
      return 'check the path: a part of it is a file';
    default:
      return undefined;
  }
}
