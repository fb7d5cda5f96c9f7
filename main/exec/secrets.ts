// What counts as secret material, written once: the exec runner redacts it from everything that
// leaves a child process (events, results, errors), and the recovery bundle's guard refuses a
// file that holds it. Two mechanisms: values registered when a secret is loaded (exact match,
// multi-line values line by line), and shapes that are secret wherever they appear.
import { TOKEN_PREFIX } from '../trust/token';

/** Shapes of secret material; `re` has no flags (callers add g when they replace). */
export const SECRET_SHAPES: readonly { what: string; re: RegExp }[] = [
  { what: 'a private key (PEM)', re: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/ },
  { what: 'a PGP private key', re: /-----BEGIN PGP PRIVATE KEY BLOCK-----/ },
  { what: 'an age identity', re: /AGE-SECRET-KEY-1[0-9A-Z]+/ },
  { what: 'an enrollment token', re: new RegExp(`\\b${TOKEN_PREFIX}\\.[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{16,}`) },
  // wg(8) config `PrivateKey = …`, JSON/YAML `privateKey: …`, `private_key=…`.
  { what: 'a WireGuard private key', re: /private[_-]?key["']?\s*[:=]\s*["']?[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=/i },
  // An HMAC/secret/password value in base64 (32+ characters, mixed case: not a hex digest) next to its name.
  {
    what: 'an HMAC or secret key (base64)',
    re: /(?:[Hh][Mm][Aa][Cc]|[Ss][Ee][Cc][Rr][Ee][Tt]|[Pp]ass(?:phrase|word)|PASS(?:PHRASE|WORD))[\w.-]*["']?\s*[:=]\s*["']?(?=[A-Za-z0-9+/_-]*[A-Z])(?=[A-Za-z0-9+/_-]*[a-z])[A-Za-z0-9+/_-]{32,}={0,2}/,
  },
];

const registered = new Set<string>();

/**
 * A value that must never leave a child process's output: the runner redacts it from every
 * event, result and error from now on. Multi-line values (PEM keys) are registered line by line
 * too, since output is streamed a line at a time. Values under 8 characters are ignored (they
 * would redact ordinary words).
 */
export function registerSecret(value: string | Uint8Array | undefined): void {
  if (value === undefined) return;
  const text = typeof value === 'string' ? value : Buffer.from(value).toString('utf8');
  // Binary secrets (HMAC keys) travel as base64 or hex: those spellings are the secret too.
  const spellings = typeof value === 'string' ? [] : [Buffer.from(value).toString('base64'), Buffer.from(value).toString('base64url'), Buffer.from(value).toString('hex')];
  for (const v of [text, ...text.split(/\r?\n/), ...spellings]) {
    const t = v.trim();
    if (t.length >= 8 && !/^-----(BEGIN|END) /.test(t)) registered.add(t);
  }
}

const REDACT_SHAPES = SECRET_SHAPES.map((s) => new RegExp(s.re.source, `${s.re.flags}g`));
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----[\s\S]*?(?:-----END \1-----|$)/g;

/** `text` with every registered value, every extra value and every secret shape replaced by ***. */
export function redactSecrets(text: string, extra: readonly string[] = []): string {
  let out = text.replace(PEM_BLOCK, '***');
  for (const s of [...extra, ...registered]) if (s.length >= 4 && out.includes(s)) out = out.split(s).join('***');
  for (const re of REDACT_SHAPES) out = out.replace(re, '***');
  return out;
}

/** Environment variables a child inherits (everything else, secrets included, stays behind). */
const CHILD_ENV = /^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|TERM|XDG_RUNTIME_DIR|SOURCE_DATE_EPOCH|DEBIAN_FRONTEND|SSH_AUTH_SOCK|ANSIBLE_[A-Z_]+|(?:http|https|no|HTTP|HTTPS|NO)_(?:proxy|PROXY))$/;

/** The minimal environment of a child process: the allowlisted variables of `env`. */
export function childEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && CHILD_ENV.test(k)) out[k] = v;
  return out;
}
