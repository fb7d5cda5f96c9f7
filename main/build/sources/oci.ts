// Container images from declared sources (spec.sources.images): pulled through the registry's
// HTTP API (distribution v2), the manifest checked against the pinned digest BEFORE anything is
// kept (a tag that moved is refused), every blob checked against the digest its manifest names,
// then cached by content and written as an OCI image layout (oci-layout, index.json, blobs/).
// Loopback registries (127.0.0.1, localhost) are spoken to over http, every other one over https.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { canonicalJson, sha256Hex } from '../../../common/canonical';
import type { ImageSourceSpec } from '../../../common/spec/schema';
import { writeFileAtomic } from '../files';
import { contentPath } from './fetch';
import { SourceVerifyError, verifyBlob, verifyImageManifest } from './verify';

type ImageSource = z.infer<typeof ImageSourceSpec>;

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;
const ACCEPT = Object.values(MEDIA).join(', ');

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture?: string; os?: string };
}

/** Pure: host, repository and tag of a reference (no "@digest": the schema refuses it). */
export function splitReference(reference: string): { registry: string; repository: string; tag: string } {
  const slash = reference.indexOf('/');
  const registry = reference.slice(0, slash);
  const rest = reference.slice(slash + 1);
  const colon = rest.lastIndexOf(':');
  return colon > rest.lastIndexOf('/') ? { registry, repository: rest.slice(0, colon), tag: rest.slice(colon + 1) } : { registry, repository: rest, tag: 'latest' };
}

function apiBase(registry: string): string {
  const loopback = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(registry);
  return `${loopback ? 'http' : 'https'}://${registry}/v2`;
}

async function get(source: ImageSource, url: string, accept: string | undefined, signal?: AbortSignal): Promise<{ body: Uint8Array; mediaType: string }> {
  let res: Response;
  try {
    res = await fetch(url, { headers: accept ? { accept } : {}, signal: AbortSignal.any([AbortSignal.timeout(300_000), ...(signal ? [signal] : [])]) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new SourceVerifyError(source.name, `image source ${source.name}: ${url} is unreachable (${cause?.code ?? (err as Error).message}); nothing was cached`, 'build on a foundry that reaches the registry, or reuse a cache that already holds the image');
  }
  if (!res.ok) throw new SourceVerifyError(source.name, `image source ${source.name}: ${url} answered HTTP ${res.status}; nothing was cached`, 'check the reference in spec.sources.images (a removed tag or repository)');
  return { body: new Uint8Array(await res.arrayBuffer()), mediaType: (res.headers.get('content-type') ?? '').split(';')[0]!.trim() };
}

export interface PulledImage {
  name: string;
  reference: string;
  /** The pinned digest (of the manifest or index the tag pointed to). */
  digest: string;
  mediaType: string;
  size: number;
  /** Every blob digest the image needs, the top manifest included. */
  blobs: string[];
  /** How many of them came from the registry in this pull (0: all from the cache). */
  fetched: number;
}

/** How a build reaches the registry: `cache-first` (default, --frozen) uses a cached manifest and
 * blobs with no network call; `refresh` (--update) asks the registry for the tag again (a tag that
 * moved is refused) and still reuses cached blobs; `offline` never touches the network. */
export type PullMode = 'cache-first' | 'refresh' | 'offline';

/** A cached blob whose content still hashes to its digest (re-hashed on every use), else undefined. */
function cachedBlob(cacheDir: string, digest: string): Uint8Array | undefined {
  const path = contentPath(cacheDir, digest.replace(/^sha256:/, ''));
  if (!existsSync(path)) return undefined;
  const body = readFileSync(path);
  return `sha256:${sha256Hex(body)}` === digest ? new Uint8Array(body) : undefined;
}

/**
 * Pull one image into the content-addressed cache. The tag's manifest must hash to the pinned
 * digest; an index is followed to its linux/amd64 manifest; each blob is verified before it is kept.
 * What the cache already holds (re-hashed) is not fetched again (see PullMode).
 */
export async function pullImage(source: ImageSource, o: { cacheDir: string; signal?: AbortSignal; mode?: PullMode }): Promise<PulledImage> {
  const mode = o.mode ?? 'cache-first';
  const { registry, repository, tag } = splitReference(source.reference);
  const api = `${apiBase(registry)}/${repository}`;
  let fetched = 0;
  const missingOffline = (what: string, digest: string): SourceVerifyError =>
    new SourceVerifyError(
      source.name,
      `image source ${source.name} (${source.reference}): --offline and the cache ${o.cacheDir} does not hold its ${what} ${digest}; nothing was fetched`,
      'build once on a foundry that reaches the registry (the image is then cached by digest), then build --offline',
    );
  /** A blob by digest: the cache, else the registry (verified against the digest). */
  const blob = async (digest: string, url: string, accept: string | undefined, what: string): Promise<{ body: Uint8Array; mediaType: string; cached: boolean }> => {
    const hit = cachedBlob(o.cacheDir, digest);
    if (hit) return { body: hit, mediaType: '', cached: true };
    if (mode === 'offline') throw missingOffline(what, digest);
    const got = await get(source, url, accept, o.signal);
    verifyBlob(source, digest, got.body);
    fetched++;
    return { ...got, cached: false };
  };
  let top: { body: Uint8Array; mediaType: string };
  const cachedTop = mode === 'refresh' ? undefined : cachedBlob(o.cacheDir, source.digest);
  if (cachedTop) top = { body: cachedTop, mediaType: '' };
  else if (mode === 'offline') throw missingOffline('manifest', source.digest);
  else {
    top = await get(source, `${api}/manifests/${tag}`, ACCEPT, o.signal);
    verifyImageManifest(source, top.body);
    fetched++;
  }
  const keep: [string, Uint8Array][] = [[source.digest, top.body]];
  let manifest = JSON.parse(Buffer.from(top.body).toString('utf8')) as { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
  // A cached manifest has no Content-Type: an index is known by its `manifests`.
  const topType = manifest.mediaType ?? (top.mediaType || (manifest.manifests ? MEDIA.ociIndex : MEDIA.ociManifest));
  if (topType === MEDIA.ociIndex || topType === MEDIA.dockerList) {
    const child = manifest.manifests?.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === 'amd64');
    if (!child) throw new SourceVerifyError(source.name, `image source ${source.name} (${source.reference}): the index has no linux/amd64 image`, 'pin an image built for linux/amd64');
    const c = await blob(child.digest, `${api}/manifests/${child.digest}`, ACCEPT, 'linux/amd64 manifest');
    keep.push([child.digest, c.body]);
    manifest = JSON.parse(Buffer.from(c.body).toString('utf8')) as typeof manifest;
  }
  if (!manifest.config || !manifest.layers) throw new SourceVerifyError(source.name, `image source ${source.name} (${source.reference}): the manifest names no config or layers`, 'is this a container image?');
  for (const [i, d] of [manifest.config, ...manifest.layers].entries()) {
    const b = await blob(d.digest, `${api}/blobs/${d.digest}`, undefined, i === 0 ? 'config' : 'layer');
    if (!b.cached) keep.push([d.digest, b.body]);
  }
  // Everything verified: only now is anything written.
  mkdirSync(join(o.cacheDir, 'sha256'), { recursive: true, mode: 0o700 });
  for (const [digest, body] of keep) {
    const path = contentPath(o.cacheDir, digest.replace(/^sha256:/, ''));
    if (!existsSync(path)) writeFileAtomic(path, body, 0o644);
  }
  const blobs = [...new Set([source.digest, ...keep.map(([d]) => d), manifest.config.digest, ...manifest.layers.map((l) => l.digest)])].sort();
  return { name: source.name, reference: source.reference, digest: source.digest, mediaType: topType, size: top.body.byteLength, blobs, fetched };
}

/**
 * Write an OCI image layout holding the pulled images (sorted; one index.json naming each
 * reference). `io.containerd.image.name` makes `ctr images import` of the layout keep the full
 * reference (payload/ansible kubedos_containerd), so kubeadm finds the images it expects.
 */
export function writeOciLayout(outDir: string, images: readonly PulledImage[], cacheDir: string): { indexSha256: string; blobs: number } {
  mkdirSync(join(outDir, 'blobs', 'sha256'), { recursive: true });
  const blobs = new Set<string>();
  for (const img of images) for (const d of img.blobs) blobs.add(d);
  for (const d of [...blobs].sort()) {
    const hex = d.replace(/^sha256:/, '');
    const dst = join(outDir, 'blobs', 'sha256', hex);
    if (!existsSync(dst)) copyFileSync(contentPath(cacheDir, hex), dst);
  }
  writeFileAtomic(join(outDir, 'oci-layout'), `${canonicalJson({ imageLayoutVersion: '1.0.0' })}\n`);
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA.ociIndex,
    manifests: [...images]
      .sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0))
      .map((i) => ({ mediaType: i.mediaType, digest: i.digest, size: i.size, annotations: { 'org.opencontainers.image.ref.name': i.reference, 'io.containerd.image.name': i.reference, 'io.kubedos.source': i.name } })),
  };
  const text = `${canonicalJson(index)}\n`;
  writeFileAtomic(join(outDir, 'index.json'), text);
  return { indexSha256: sha256Hex(text), blobs: blobs.size };
}
