// Killing the SSH connection in the middle of an upload, then rerunning, resumes from the
// partial file and ends with a verified hash; an identical file is never sent twice.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArtifactFile } from '../../main/substrate/driver';
import { SubstrateError } from '../../main/substrate/driver';
import type { ProxmoxSshDriver } from '../../main/substrate/proxmox-ssh';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { startProxmoxStandIn } from '../fixtures/proxmox/standin';
import { eventLog, lab3Plan, standInDriver } from './helpers';

describe('SFTP upload to the stand-in', () => {
  let standin: ProxmoxStandIn;
  let driver: ProxmoxSshDriver;
  let dir: string;
  let artifact: ArtifactFile;

  beforeAll(async () => {
    standin = await startProxmoxStandIn({ startQemu: false });
    driver = standInDriver(standin, lab3Plan());
    dir = mkdtempSync(join(tmpdir(), 'kubedos-upload-'));
    const data = randomBytes(96 * 1024 * 1024);
    const path = join(dir, 'artifact.qcow2');
    writeFileSync(path, data);
    artifact = { path, sha256: createHash('sha256').update(data).digest('hex'), sizeBytes: data.length, kind: 'disk-image', name: 'kubedos-resume-test.qcow2' };
  });

  afterAll(async () => {
    await driver?.close();
    await standin?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('resumes after the connection is killed mid-transfer and verifies the hash', async () => {
    const log = eventLog();
    let killed = 0;
    const first = await driver
      .upload(artifact, 'local', {
        onEvent: (e) => {
          log.onEvent(e);
          if (e.kind === 'progress' && e.fraction > 0.3 && killed === 0) killed = standin.killSessions();
        },
      })
      .catch((err: unknown) => err);
    expect(killed).toBeGreaterThan(0);
    expect(first).toBeInstanceOf(SubstrateError);
    expect((first as SubstrateError).code).toMatch(/connection-lost|ssh/);
    expect((first as SubstrateError).hint).toMatch(/rerun/);
    const remote = join(standin.root, 'var/lib/vz/import', artifact.name);
    expect(existsSync(remote)).toBe(false);
    const partial = statSync(`${remote}.kubedos-part`).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(artifact.sizeBytes);

    const second = await driver.upload(artifact, 'local', log);
    expect(second.action).toBe('resumed');
    expect(second.bytesSent).toBeLessThanOrEqual(artifact.sizeBytes - partial);
    expect(second.volid).toBe(`local:import/${artifact.name}`);
    expect(createHash('sha256').update(readFileSync(remote)).digest('hex')).toBe(artifact.sha256);
    expect(existsSync(`${remote}.kubedos-part`)).toBe(false);
    expect(driver.session.connects).toBe(2);
    expect(log.events.some((e) => e.kind === 'log' && /resuming the interrupted upload/.test(e.message))).toBe(true);

    const third = await driver.upload(artifact, 'local');
    expect(third).toMatchObject({ action: 'skipped', bytesSent: 0 });
  });

  it('a stale partial file that is not a prefix of ours is detected by the hash and re-sent', async () => {
    const other = { ...artifact, name: 'kubedos-stale-part.qcow2' };
    const remote = join(standin.root, 'var/lib/vz/import', other.name);
    writeFileSync(`${remote}.kubedos-part`, randomBytes(1024 * 1024));
    const log = eventLog();
    const r = await driver.upload(other, 'local', log);
    expect(r.action).toBe('uploaded');
    expect(createHash('sha256').update(readFileSync(remote)).digest('hex')).toBe(artifact.sha256);
    expect(log.events.some((e) => e.kind === 'log' && e.level === 'warn' && /uploading again from the start/.test(e.message))).toBe(true);
  });
});
