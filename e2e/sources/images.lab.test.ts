// Container images from a declared source, against Debian's docker-registry on loopback (started
// and stopped by PID, storage in a private temp dir; ./registry.ts). The image is written as OCI
// JSON and a gzip'd tar layer by our own code and pushed through the registry API; the builder's pull then
// checks the pinned digest before anything is kept and writes an OCI image layout.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../common/canonical';
import { ImageSourceSpec } from '../../common/spec/schema';
import { MEDIA, pullImage, writeOciLayout } from '../../main/build/sources/oci';
import { collectUpstream, importSourceContent } from '../../main/build/sources/index';
import { parseSpec, TEMPLATES } from '../../common/spec/index';
import type { LoopbackRegistry } from './registry';
import { freePort, pushImage as push, startRegistry } from './registry';

const root = mkdtempSync(join(tmpdir(), 'kubedos-h13-registry-'));
let registry: LoopbackRegistry | undefined;
let host = '';

function pushImage(repo: string, tag: string, text: string): Promise<{ digest: string; bytes: Buffer }> {
  return push(host, repo, tag, [{ name: 'hello.txt', content: Buffer.from(text) }]);
}

beforeAll(async () => {
  registry = await startRegistry(root);
  host = registry.host;
}, 30_000);

afterAll(() => {
  registry?.stop();
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
