// The build's upstream step: declared files and images (spec.sources) fetched, verified and cached
// by content (fetch.ts, oci.ts), then handed to the build as two placeable entries: files under
// files/sha256/<hex>, images as one OCI image layout under oci/. Declared apt repositories go
// into the darksite lock and repository instead (apt.ts, called by the build before the darksite).
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sha256Hex } from '../../../common/canonical';
import { firstFew } from '../../../common/text/first-few';
import type { ClusterSpec } from '../../../common/spec/schema';
import type { CachedFile } from '../cache';
import { listFiles } from '../files';
import type { FetchedFile } from './fetch';
import { contentPath, fetchFileSource } from './fetch';
import type { PulledImage, PullMode } from './oci';
import { pullImage, writeOciLayout } from './oci';

export interface UpstreamInputs {
  files: FetchedFile[];
  images: PulledImage[];
  /** Placeable at files/ (content-addressed). */
  fileEntry: { dir: string; files: CachedFile[] };
  /** Placeable at oci/ (an OCI image layout). */
  layoutEntry?: { dir: string; files: CachedFile[] };
}

/**
 * The build's lock mode decides how far it reaches: cached content (re-hashed) is used without a
 * network call; `update` asks each registry for the tag again (a tag that moved is refused);
 * `offline` never touches the network and names what the cache lacks.
 */
export async function collectUpstream(spec: ClusterSpec, cacheDir: string, o: { signal?: AbortSignal; log: (line: string) => void; mode?: 'default' | 'update' | 'frozen' | 'offline' }): Promise<UpstreamInputs> {
  const src = spec.spec.sources;
  const store = join(cacheDir, 'sources');
  const offline = o.mode === 'offline';
  const pullMode: PullMode = offline ? 'offline' : o.mode === 'update' ? 'refresh' : 'cache-first';
  const files: FetchedFile[] = [];
  for (const f of src.files) {
    const got = await fetchFileSource(f, { cacheDir: store, offline, ...(o.signal ? { signal: o.signal } : {}) });
    o.log(`sources: file ${f.name} ${got.cached ? 'from the cache' : 'downloaded'}, sha256 ${f.sha256.slice(0, 16)}… verified`);
    files.push(got);
  }
  const images: PulledImage[] = [];
  for (const i of src.images) {
    const img = await pullImage(i, { cacheDir: store, mode: pullMode, ...(o.signal ? { signal: o.signal } : {}) });
    o.log(`sources: image ${i.name} ${i.reference} ${i.digest.slice(0, 19)}… verified (${img.blobs.length} blobs, ${img.fetched ? `${img.fetched} downloaded` : 'all from the cache'})`);
    images.push(img);
  }
  const fileEntry = {
    dir: store,
    files: files.map((f) => ({ path: `sha256/${f.sha256}`, sha256: f.sha256, size: statSync(contentPath(store, f.sha256)).size })),
  };
  let layoutEntry: UpstreamInputs['layoutEntry'];
  if (images.length) {
    const key = sha256Hex(JSON.stringify(images.map((i) => [i.reference, i.digest]).sort()));
    const dir = join(store, 'layouts', key);
    rmSync(dir, { recursive: true, force: true });
    writeOciLayout(dir, images, store);
    layoutEntry = { dir, files: listFiles(dir).map((p) => ({ path: p, sha256: sha256Hex(readFileSync(join(dir, p))), size: statSync(join(dir, p)).size })) };
  }
  return { files, images, fileEntry, ...(layoutEntry ? { layoutEntry } : {}) };
}

/**
 * `--from BUILD`: take the images' blobs (oci/blobs/sha256/) and the files (files/sha256/) of an
 * earlier build into the content cache, each re-hashed against its name; afterwards an --offline
 * build needs no registry or file source for them. A file whose bytes are not its name is refused
 * by name before anything of that build is taken.
 */
export function importSourceContent(fromDir: string, cacheDir: string, log?: (line: string) => void): { imported: number } {
  const store = join(cacheDir, 'sources', 'sha256');
  const found: { rel: string; path: string; hex: string }[] = [];
  for (const rel of ['oci/blobs/sha256', 'files/sha256']) {
    const dir = join(fromDir, rel);
    if (!existsSync(dir)) continue;
    for (const hex of readdirSync(dir).sort()) if (/^[0-9a-f]{64}$/.test(hex)) found.push({ rel: `${rel}/${hex}`, path: join(dir, hex), hex });
  }
  const bad = found.filter((f) => sha256Hex(readFileSync(f.path)) !== f.hex).map((f) => f.rel);
  if (bad.length) throw new Error(`--from ${fromDir}: ${bad.length} image blob(s) or file(s) do not match the sha256 they are named by: ${firstFew(bad)}; nothing was taken from it (kubedos verify ${fromDir} names the first bad file)`);
  let imported = 0;
  for (const f of found) {
    const dst = join(store, f.hex);
    if (existsSync(dst) && sha256Hex(readFileSync(dst)) === f.hex) continue;
    mkdirSync(store, { recursive: true, mode: 0o700 });
    const tmp = `${dst}.import-${process.pid}`;
    copyFileSync(f.path, tmp);
    renameSync(tmp, dst);
    imported++;
  }
  if (found.length) log?.(`sources: took ${imported} image blob(s) and file(s) from ${fromDir} (${found.length - imported} already cached)`);
  return { imported };
}
