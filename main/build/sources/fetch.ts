// Fetch declared sources into a content-addressed cache: <cache>/sha256/<hex>. Bytes are
// verified in memory first (verify.ts); only verified content is ever written, so the cache never
// holds anything the spec did not pin. A cached entry is re-hashed before it is used.
// Covered here: files (spec.sources.files) and an apt source's InRelease; apt.ts takes the
// packages, oci.ts the images.
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { sha256Hex } from '../../../common/canonical';
import type { AptSourceSpec, FileSourceSpec } from '../../../common/spec/schema';
import { writeFileAtomic } from '../files';
import type { VerifiedRelease } from './verify';
import { SourceVerifyError, verifyFile, verifyInRelease } from './verify';

/** Larger than any chart or CLI tarball a cluster needs; a bigger body is refused, not buffered. */
export const MAX_SOURCE_BYTES = 512 * 1024 * 1024;

export interface FetchOptions {
  /** Content-addressed cache root. */
  cacheDir: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Files only: the cache or a refusal, never the network (kubedos build --offline). */
  offline?: boolean;
}

/** The cache path of content with this sha256. */
export function contentPath(cacheDir: string, sha256: string): string {
  return join(cacheDir, 'sha256', sha256);
}

/** GET url (http, https, or a local file: URL) into memory, bounded; failures name the source. */
export async function download(source: string, url: string, o: Omit<FetchOptions, 'cacheDir'>): Promise<Uint8Array> {
  if (url.startsWith('file:')) {
    const path = fileURLToPath(url);
    if (!existsSync(path)) throw new SourceVerifyError(source, `source ${source}: ${url} does not exist; nothing was cached`, 'check the path in spec.sources');
    if (statSync(path).size > MAX_SOURCE_BYTES) throw new SourceVerifyError(source, `source ${source}: ${url} is over the ${MAX_SOURCE_BYTES} byte limit; nothing was cached`, 'is this the right file?');
    return new Uint8Array(readFileSync(path));
  }
  const signal = AbortSignal.any([AbortSignal.timeout(o.timeoutMs ?? 120_000), ...(o.signal ? [o.signal] : [])]);
  let res: Response;
  try {
    res = await fetch(url, { signal, redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new SourceVerifyError(source, `source ${source}: ${url} is unreachable (${cause?.code ?? cause?.message ?? (err as Error).message}); nothing was cached`, 'build on a foundry that reaches the declared sources, or reuse a cache that already holds them (kubedos build --offline)');
  }
  if (!res.ok) throw new SourceVerifyError(source, `source ${source}: ${url} answered HTTP ${res.status}; nothing was cached`, 'check the URL in spec.sources (a moved repository or file)');
  const length = Number(res.headers.get('content-length') ?? '0');
  if (length > MAX_SOURCE_BYTES) throw new SourceVerifyError(source, `source ${source}: ${url} is ${length} bytes, over the ${MAX_SOURCE_BYTES} byte limit; nothing was cached`, 'is this the right URL?');
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.byteLength > MAX_SOURCE_BYTES) throw new SourceVerifyError(source, `source ${source}: ${url} sent more than ${MAX_SOURCE_BYTES} bytes; nothing was cached`, 'is this the right URL?');
  return body;
}

export interface FetchedFile {
  name: string;
  sha256: string;
  path: string;
  /** true: served from the cache (re-hashed), nothing downloaded. */
  cached: boolean;
}

/** A file source: from the cache when it holds the pinned content, else downloaded, verified, cached. */
export async function fetchFileSource(source: z.infer<typeof FileSourceSpec>, o: FetchOptions): Promise<FetchedFile> {
  const path = contentPath(o.cacheDir, source.sha256);
  if (existsSync(path) && sha256Hex(readFileSync(path)) === source.sha256) return { name: source.name, sha256: source.sha256, path, cached: true };
  if (o.offline) {
    throw new SourceVerifyError(source.name, `file source ${source.name} (${source.url}): --offline and the cache ${o.cacheDir} does not hold sha256 ${source.sha256}; nothing was fetched`, 'build once on a foundry that reaches the source (the file is then cached by hash), then build --offline');
  }
  const body = await download(source.name, source.url, o);
  verifyFile(source, body);
  mkdirSync(join(o.cacheDir, 'sha256'), { recursive: true, mode: 0o700 });
  writeFileAtomic(path, body, 0o644);
  return { name: source.name, sha256: source.sha256, path, cached: false };
}

/** The InRelease URL of an apt source (flat repositories: the suite is a path ending in "/"). */
export function inReleaseUrl(source: z.infer<typeof AptSourceSpec>): string {
  const base = source.url.replace(/\/+$/, '');
  return source.suite.endsWith('/') ? `${base}/${source.suite.replace(/^\/+/, '')}InRelease` : `${base}/dists/${source.suite}/InRelease`;
}

export interface FetchedRelease extends VerifiedRelease {
  name: string;
  sha256: string;
  path: string;
}

/**
 * An apt source's InRelease, verified against the pinned fingerprint with `keyring` (the key the
 * repository publishes), then cached by content. The Packages indexes and .debs it lists are
 * checked against its SHA256 fields by apt.ts.
 */
export async function fetchInRelease(source: z.infer<typeof AptSourceSpec>, keyring: Uint8Array, o: FetchOptions): Promise<FetchedRelease> {
  const body = await download(source.name, inReleaseUrl(source), o);
  const valid = await verifyInRelease(source, body, keyring, o.signal);
  const sha256 = sha256Hex(body);
  const path = contentPath(o.cacheDir, sha256);
  mkdirSync(join(o.cacheDir, 'sha256'), { recursive: true, mode: 0o700 });
  if (!existsSync(path)) writeFileAtomic(path, body, 0o644);
  return { name: source.name, sha256, path, ...valid };
}
