// Commands sent over SSH are ONE string that the remote login shell interprets (that is how
// the SSH "exec" request works). Every word we send is therefore quoted here, with strict
// POSIX single quotes: inside '...' no character is special, and a literal ' is written as
// '\'' (close, escaped quote, reopen). Words that are plainly safe stay bare for readability.
// Control characters are refused outright: no validated Proxmox value contains them, and a
// newline or NUL in a command line is always a bug or an attack.

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

export class UnsafeShellWordError extends Error {
  constructor(word: string) {
    super(`refusing to send a command word with control characters to a remote shell: ${JSON.stringify(word)}`);
    this.name = 'UnsafeShellWordError';
  }
}

/** One argv word as POSIX shell text that evaluates back to exactly `word`. */
export function shellQuote(word: string): string {
  if (CONTROL.test(word)) throw new UnsafeShellWordError(word);
  if (word.length > 0 && SAFE_WORD.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** An argv as one remote command line: each word quoted, joined by single spaces. */
export function remoteCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('empty remote command');
  return argv.map(shellQuote).join(' ');
}
