// The bundle is public: it may travel on a USB stick next to the cluster. This guard refuses any
// file that looks like secret material (the shapes in exec/secrets.ts: PEM/OpenSSH/PGP private
// keys, age identities, enrollment tokens, WireGuard private keys, HMAC/secret values), also
// inside gzip'd files, both when the bundle is written and when it is verified.
import { gunzipSync } from 'node:zlib';
import { SECRET_SHAPES } from '../exec/secrets';

/** Decompressed bytes looked at inside a gzip member (a bundle file is small; a bomb is not read). */
const GUNZIP_LIMIT = 64 * 1024 * 1024;

/** What kind of secret `data` seems to hold, or undefined. */
export function secretMaterialIn(data: Uint8Array | string, depth = 0): string | undefined {
  const bytes = typeof data === 'string' ? undefined : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const text = typeof data === 'string' ? data : (bytes as Buffer).toString('latin1');
  const found = SECRET_SHAPES.find((p) => p.re.test(text))?.what;
  if (found) return found;
  if (bytes && depth < 2 && bytes.length > 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    let inner: Buffer;
    try {
      inner = gunzipSync(bytes, { maxOutputLength: GUNZIP_LIMIT });
    } catch {
      return 'a gzip file that cannot be inspected (corrupt or over 64 MiB unpacked)';
    }
    const what = secretMaterialIn(inner, depth + 1);
    return what ? `${what} (gzip'd)` : undefined;
  }
  return undefined;
}
