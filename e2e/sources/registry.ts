// The loopback registry stand-in of the source labs: Debian's docker-registry (started and stopped
// by PID, storage in the caller's temp dir) and images written by our own code (OCI JSON and a
// gzip'd tar layer) pushed through the registry API. Used by images.lab.test.ts and by the deploy
// lab's opt-in image proof (e2e/deploy, KUBEDOS_LAB_IMAGES=1).
import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { canonicalJson, sha256Hex } from '../../common/canonical';
import { MEDIA } from '../../main/build/sources/oci';

export const REGISTRY = '/usr/bin/docker-registry';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export interface LoopbackRegistry {
  /** 127.0.0.1:PORT, as an image reference's host. */
  host: string;
  stop(): void;
}

/** docker-registry on a free loopback port, its storage under `root`; resolves once /v2/ answers. */
export async function startRegistry(root: string): Promise<LoopbackRegistry> {
  if (!existsSync(REGISTRY)) throw new Error(`${REGISTRY} is missing: apt-get install docker-registry (scripts/setup-host.sh installs it)`);
  mkdirSync(root, { recursive: true });
  const host = `127.0.0.1:${await freePort()}`;
  writeFileSync(join(root, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(root, 'storage')}\nhttp:\n  addr: ${host}\n`);
  const child: ChildProcess = spawn(REGISTRY, ['serve', join(root, 'config.yml')], { stdio: 'ignore' });
  let stopped = false;
  // Once only, and never after it exited: its PID may belong to another process by then.
  const stop = (): void => {
    if (stopped || !child.pid || child.exitCode !== null || child.signalCode !== null) return;
    stopped = true;
    process.kill(child.pid, 'SIGTERM');
  };
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.ok).catch(() => false);
    if (ok) return { host, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  stop();
  throw new Error(`docker-registry did not answer on ${host} in 10 s`);
}

export interface TarFile {
  name: string;
  content: Buffer;
  /** Octal permission bits; 0o644 unless set. */
  mode?: number;
}

/** A tar (ustar) of plain files, enough for a layer. */
export function tarOf(files: readonly TarFile[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    const h = Buffer.alloc(512);
    h.write(f.name, 0);
    h.write(`${(f.mode ?? 0o644).toString(8).padStart(7, '0')}\0`, 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${f.content.length.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write('0', 156);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    parts.push(h, f.content, Buffer.alloc((512 - (f.content.length % 512)) % 512));
  }
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}

async function pushBlob(host: string, repo: string, body: Buffer): Promise<string> {
  const digest = `sha256:${sha256Hex(body)}`;
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`registry ${host}: starting an upload to ${repo} answered ${start.status}`);
  const loc = new URL(start.headers.get('location')!, `http://${host}`);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, { method: 'PUT', body: new Uint8Array(body), headers: { 'content-type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`registry ${host}: blob ${digest} of ${repo} answered ${put.status}`);
  return digest;
}

/** One linux/amd64 image of one layer holding `files`; its manifest's digest and bytes. */
export async function pushImage(host: string, repo: string, tag: string, files: readonly TarFile[], cmd: readonly string[] = ['/hello']): Promise<{ digest: string; bytes: Buffer }> {
  const tar = tarOf(files);
  const layer = gzipSync(tar, { level: 9 });
  const config = Buffer.from(canonicalJson({ architecture: 'amd64', os: 'linux', config: { Cmd: [...cmd] }, rootfs: { type: 'layers', diff_ids: [`sha256:${sha256Hex(tar)}`] } }));
  const configDigest = await pushBlob(host, repo, config);
  const layerDigest = await pushBlob(host, repo, layer);
  const manifest = Buffer.from(
    canonicalJson({
      schemaVersion: 2,
      mediaType: MEDIA.ociManifest,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    }),
  );
  const put = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(manifest), headers: { 'content-type': MEDIA.ociManifest } });
  const digest = `sha256:${sha256Hex(manifest)}`;
  if (put.status !== 201) throw new Error(`registry ${host}: manifest ${repo}:${tag} answered ${put.status}`);
  if (put.headers.get('docker-content-digest') !== digest) throw new Error(`registry ${host}: manifest ${repo}:${tag} stored as ${put.headers.get('docker-content-digest')}, written as ${digest}`);
  return { digest, bytes: manifest };
}

/**
 * A static linux/amd64 executable (ELF64, one PT_LOAD, no libc) that writes `text` to stdout and
 * exits 0: a container of it needs nothing else in its root file system.
 */
export function printExecutable(text: string): Buffer {
  const msg = Buffer.from(text);
  const base = 0x400000;
  const headers = 64 + 56;
  // mov eax,1; mov edi,1; lea rsi,[rip+16]; mov edx,len; syscall; mov eax,60; xor edi,edi; syscall
  const code = Buffer.from([0xb8, 1, 0, 0, 0, 0xbf, 1, 0, 0, 0, 0x48, 0x8d, 0x35, 16, 0, 0, 0, 0xba, 0, 0, 0, 0, 0x0f, 0x05, 0xb8, 60, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05]);
  code.writeUInt32LE(msg.length, 18);
  const size = headers + code.length + msg.length;
  const elf = Buffer.alloc(headers);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(elf, 0);
  elf.writeUInt16LE(2, 16); // ET_EXEC
  elf.writeUInt16LE(0x3e, 18); // x86-64
  elf.writeUInt32LE(1, 20);
  elf.writeBigUInt64LE(BigInt(base + headers), 24); // entry: the code right after the headers
  elf.writeBigUInt64LE(64n, 32); // program headers
  elf.writeUInt16LE(64, 52);
  elf.writeUInt16LE(56, 54);
  elf.writeUInt16LE(1, 56);
  elf.writeUInt16LE(64, 58);
  elf.writeUInt32LE(1, 64); // PT_LOAD
  elf.writeUInt32LE(5, 68); // R+X
  elf.writeBigUInt64LE(0n, 72);
  elf.writeBigUInt64LE(BigInt(base), 80);
  elf.writeBigUInt64LE(BigInt(base), 88);
  elf.writeBigUInt64LE(BigInt(size), 96);
  elf.writeBigUInt64LE(BigInt(size), 104);
  elf.writeBigUInt64LE(0x1000n, 112);
  return Buffer.concat([elf, code, msg]);
}
