// Container images from a declared source, against Debian's docker-registry on loopback (started
// and stopped by PID, storage in a private temp dir). The image is written here as OCI JSON and a
// gzip'd tar layer by our own code and pushed through the registry API; the builder's pull then
// checks the pinned digest before anything is kept and writes an OCI image layout.
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { ImageSourceSpec } from '../../common/spec/schema';
import { MEDIA, pullImage, writeOciLayout } from '../../main/build/sources/oci';
import { collectUpstream, importSourceContent } from '../../main/build/sources/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';

const REGISTRY = '/usr/bin/docker-registry';
const root = mkdtempSync(join(tmpdir(), 'kubedos-h13-registry-'));
let registry: ChildProcess | undefined;
let host = '';

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** A one-file tar (ustar), enough for a layer. */
function tarOf(name: string, content: Buffer): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([h, content, pad, Buffer.alloc(1024)]);
}

async function pushBlob(repo: string, body: Buffer): Promise<string> {
  const digest = `sha256:${sha256Hex(body)}`;
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const loc = new URL(start.headers.get('location')!, `http://${host}`);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': 'application/octet-stream' } });
  expect(put.status).toBe(201);
  return digest;
}

async function pushImage(repo: string, tag: string, text: string): Promise<{ digest: string; bytes: Buffer }> {
  const tar = tarOf('hello.txt', Buffer.from(text));
  const layer = gzipSync(tar, { level: 9 });
  const config = Buffer.from(canonicalJson({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${sha256Hex(tar)}`] } }));
  const configDigest = await pushBlob(repo, config);
  const layerDigest = await pushBlob(repo, layer);
  const manifest = Buffer.from(
    canonicalJson({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    }),
  );
  const put = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(manifest), headers: { 'content-type': MEDIA.ociManifest } });
  expect(put.status).toBe(201);
  const digest = `sha256:${sha256Hex(manifest)}`;
  expect(put.headers.get('docker-content-digest')).toBe(digest);
  return { digest, bytes: manifest };
}

beforeAll(async () => {
  if (!existsSync(REGISTRY)) throw new Error(`${REGISTRY} is missing: apt-get install docker-registry (scripts/setup-host.sh installs it)`);
  const port = await freePort();
  host = `127.0.0.1:${port}`;
  writeFileSync(join(root, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(root, 'storage')}\nhttp:\n  addr: ${host}\n`);
  registry = spawn(REGISTRY, ['serve', join(root, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.ok).catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer on ${host} in 10 s`);
}, 30_000);

afterAll(() => {
  if (registry?.pid) process.kill(registry.pid, 'SIGTERM');
  rmSync(root, { recursive: true, force: true });
});

describe('images from a declared source (docker-registry on loopback)', () => {
  it('pulls the pinned image, verified, into the cache and an OCI image layout', async () => {
    const pushed = await pushImage('kubedos/hello', 'v1', 'hello from the darksite\n');
    const source = ImageSourceSpec.parse({ name: 'hello', reference: `${host}/kubedos/hello:v1`, digest: pushed.digest });
    const cacheDir = join(root, 'cache');
    const img = await pullImage(source, { cacheDir });
    expect(img.blobs).toHaveLength(3);
    const layout = join(root, 'layout');
    const w = writeOciLayout(layout, [img], cacheDir);
    expect(w.blobs).toBe(3);
    expect(JSON.parse(readFileSync(join(layout, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    expect(index.manifests).toEqual([{ mediaType: MEDIA.ociManifest, digest: pushed.digest, size: pushed.bytes.length, annotations: { 'io.containerd.image.name': source.reference, 'io.kubedos.source': 'hello', 'org.opencontainers.image.ref.name': source.reference } }]);
    for (const f of readdirSync(join(layout, 'blobs/sha256'))) expect(sha256Hex(readFileSync(join(layout, 'blobs/sha256', f)))).toBe(f);
  });
  it('the build step: declared images become placeable oci/ files', async () => {
    const pushed = await pushImage('kubedos/build', 'v1', 'for the build step\n');
    const spec = parseSpec(TEMPLATES['lab-3'].text).spec!;
    spec.spec.sources.images = [{ name: 'build', reference: `${host}/kubedos/build:v1`, digest: pushed.digest }];
    const lines: string[] = [];
    const u = await collectUpstream(spec, join(root, 'build-cache'), { log: (l) => lines.push(l) });
    expect(u.images.map((i) => i.digest)).toEqual([pushed.digest]);
    expect(u.layoutEntry!.files.map((f) => f.path).filter((p) => !p.startsWith('blobs/'))).toEqual(['index.json', 'oci-layout']);
    expect(u.layoutEntry!.files.filter((f) => f.path.startsWith('blobs/sha256/'))).toHaveLength(3);
    expect(lines.join('\n')).toMatch(/sources: image build .* verified \(3 blobs, 3 downloaded\)/);
    // Again, with the registry's address gone: the cache alone (re-hashed), in the default and the --offline mode.
    const gone = { ...spec, spec: { ...spec.spec, sources: { ...spec.spec.sources, images: [{ ...spec.spec.sources.images[0]!, reference: `127.0.0.1:${await freePort()}/kubedos/build:v1` }] } } };
    for (const mode of ['default', 'offline'] as const) {
      lines.length = 0;
      const again = await collectUpstream(gone, join(root, 'build-cache'), { mode, log: (l) => lines.push(l) });
      expect(again.images.map((i) => [i.digest, i.fetched])).toEqual([[pushed.digest, 0]]);
      expect(lines.join('\n')).toMatch(/verified \(3 blobs, all from the cache\)/);
    }
  });
  it('refuses a wrong digest, and a tag that moved to another image, by name; nothing is cached', async () => {
    const first = await pushImage('kubedos/moving', 'v1', 'one\n');
    const wrong = `sha256:${'3'.repeat(64)}`;
    const cacheDir = join(root, 'cache-refused');
    await expect(pullImage(ImageSourceSpec.parse({ name: 'moving', reference: `${host}/kubedos/moving:v1`, digest: wrong }), { cacheDir })).rejects.toThrow(
      `image source moving (${host}/kubedos/moving:v1): digest expected ${wrong}, found ${first.digest}; nothing was cached`,
    );
    const second = await pushImage('kubedos/moving', 'v1', 'two\n');
    await expect(pullImage(ImageSourceSpec.parse({ name: 'moving', reference: `${host}/kubedos/moving:v1`, digest: first.digest }), { cacheDir })).rejects.toThrow(
      `digest expected ${first.digest}, found ${second.digest}; nothing was cached`,
    );
    expect(existsSync(join(cacheDir, 'sha256'))).toBe(false);
  });
  it('--offline never reaches the registry and names what the cache lacks; --update asks for the tag again and refuses one that moved', async () => {
    const first = await pushImage('kubedos/cached', 'v1', 'cached one\n');
    const source = ImageSourceSpec.parse({ name: 'cached', reference: `${host}/kubedos/cached:v1`, digest: first.digest });
    const cacheDir = join(root, 'cache-modes');
    await expect(pullImage(source, { cacheDir, mode: 'offline' })).rejects.toThrow(
      `image source cached (${host}/kubedos/cached:v1): --offline and the cache ${cacheDir} does not hold its manifest ${first.digest}; nothing was fetched`,
    );
    expect(existsSync(cacheDir)).toBe(false);
    const img = await pullImage(source, { cacheDir });
    expect(img.fetched).toBe(3);
    // A layer lost from the cache: --offline names it rather than reaching out.
    const layer = img.blobs.find((d) => d !== first.digest && !readFileSync(join(cacheDir, 'sha256', d.slice(7)), 'utf8').startsWith('{'))!;
    const layerBytes = readFileSync(join(cacheDir, 'sha256', layer.slice(7)));
    writeFileSync(join(cacheDir, 'sha256', layer.slice(7)), Buffer.from('rotten'));
    await expect(pullImage(source, { cacheDir, mode: 'offline' })).rejects.toThrow(`--offline and the cache ${cacheDir} does not hold its layer ${layer}; nothing was fetched`);
    writeFileSync(join(cacheDir, 'sha256', layer.slice(7)), layerBytes);
    expect((await pullImage(source, { cacheDir, mode: 'offline' })).fetched).toBe(0);
    // The tag moves: the cache still serves the pinned digest, --update sees the move and refuses it.
    const second = await pushImage('kubedos/cached', 'v1', 'cached two\n');
    expect((await pullImage(source, { cacheDir })).fetched).toBe(0);
    await expect(pullImage(source, { cacheDir, mode: 'refresh' })).rejects.toThrow(`image source cached (${host}/kubedos/cached:v1): digest expected ${first.digest}, found ${second.digest}; nothing was cached`);
    expect(readdirSync(join(cacheDir, 'sha256')).sort()).toEqual(img.blobs.map((d) => d.slice(7)).sort());
  });
  it('--from BUILD: the oci/ and files/ of an earlier build fill an empty cache, re-hashed, and --offline then needs no registry; a tampered blob is refused by name', async () => {
    const pushed = await pushImage('kubedos/kept', 'v1', 'kept in a build\n');
    const source = ImageSourceSpec.parse({ name: 'kept', reference: `${host}/kubedos/kept:v1`, digest: pushed.digest });
    const first = join(root, 'cache-kept');
    const img = await pullImage(source, { cacheDir: first });
    const build = join(root, 'kept-build');
    writeOciLayout(join(build, 'oci'), [img], first);
    const fresh = join(root, 'cache-from');
    expect(importSourceContent(build, fresh)).toEqual({ imported: 3 });
    expect(importSourceContent(build, fresh)).toEqual({ imported: 0 });
    const gone = ImageSourceSpec.parse({ ...source, reference: `127.0.0.1:${await freePort()}/kubedos/kept:v1` });
    expect((await pullImage(gone, { cacheDir: join(fresh, 'sources'), mode: 'offline' })).fetched).toBe(0);
    const blob = img.blobs.find((d) => d !== pushed.digest)!.slice(7);
    writeFileSync(join(build, 'oci/blobs/sha256', blob), 'tampered');
    const other = join(root, 'cache-from-bad');
    expect(() => importSourceContent(build, other)).toThrow(`--from ${build}: 1 image blob(s) or file(s) do not match the sha256 they are named by: oci/blobs/sha256/${blob}; nothing was taken from it`);
    expect(existsSync(other)).toBe(false);
  });
});
