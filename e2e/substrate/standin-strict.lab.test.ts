// The stand-in is only worth something if it is as strict as Proxmox: unknown options and
// malformed property strings fail with Proxmox's messages and exit codes. And over real SSH,
// hostile words reach the remote programs exactly as sent, never interpreted by the shell.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostileString, prng } from '../fixtures/hostile';
import type { ProxmoxSshDriver } from '../../main/substrate/proxmox-ssh';
import type { ProxmoxStandIn } from '../fixtures/proxmox/standin';
import { startProxmoxStandIn } from '../fixtures/proxmox/standin';
import { lab3Plan, standInDriver } from './helpers';

describe('the strict Proxmox stand-in over real SSH', () => {
  let standin: ProxmoxStandIn;
  let driver: ProxmoxSshDriver;

  beforeAll(async () => {
    standin = await startProxmoxStandIn({ startQemu: false });
    driver = standInDriver(standin, lab3Plan());
  });
  afterAll(async () => {
    await driver?.close();
    await standin?.stop();
  });

  const rejects = async (argv: string[], stderr: RegExp): Promise<void> => {
    const r = await driver.run(argv, {}, { okCodes: [0, 1, 2, 255] });
    expect(r.exitCode, argv.join(' ')).not.toBe(0);
    expect(r.stderr).toMatch(stderr);
  };

  it('rejects what Proxmox rejects, before creating anything', async () => {
    await rejects(['qm', 'create', '4000', '--bogus', '1'], /Unknown option: bogus/);
    await rejects(['qm', 'create', '4000', '--efidisk0', 'local:1,efitype=5m'], /efidisk0\.efitype: value '5m' does not have a value in the enumeration '2m, 4m'/);
    await rejects(['qm', 'create', '4000', '--efidisk0', 'local:1,secureboot=1'], /efidisk0\.secureboot: property is not defined in schema/);
    await rejects(['qm', 'create', '4000', '--tpmstate0', 'local:1,version=v3'], /tpmstate0\.version/);
    await rejects(['qm', 'create', '4000', '--net0', 'virtio=zz:00:00:00:00:00,bridge=vmbr0'], /net0\.macaddr/);
    await rejects(['qm', 'create', '4000', '--net0', 'virtio=02:00:00:00:00:01,bridge=nobridge'], /bridge 'nobridge' does not exist/);
    await rejects(['qm', 'create', '4000', '--tags', 'ok;not:ok'], /tags: invalid format/);
    await rejects(['qm', 'create', '4000', '--name', 'bad_name!'], /name: invalid format/);
    await rejects(['qm', 'create', '99'], /vmid: invalid format/);
    await rejects(['qm', 'create', '4000', '--scsi0', 'nosuch:8'], /storage 'nosuch' does not exist/);
    await rejects(['pvesm', 'path', 'local:iso/../../x.iso'], /unable to parse directory volume name/);
    await rejects(['pvesh', 'get', '/cluster/resources', '--type', 'bogus'], /does not have a value in the enumeration/);
    await rejects(['qm', 'guest', 'cmd', '4000', 'format-disk'], /command: value 'format-disk' does not have a value/);
    expect(existsSync(standin.confPath(4000))).toBe(false);
  });

  it('qm guest exec --pass-stdin: a boolean, and STDIN past 1 MiB is refused (qm.pm reads it before the VM config)', async () => {
    await rejects(['qm', 'guest', 'exec', '4000', '--pass-stdin', 'maybe', '--', '/bin/cat'], /pass-stdin: type check \('boolean'\) failed - got 'maybe'/);
    const big = await driver.run(['qm', 'guest', 'exec', '4000', '--pass-stdin', '1', '--', '/bin/cat'], {}, { okCodes: [0, 2, 255], input: Buffer.alloc(1024 * 1024 + 1, 0x61) });
    expect(big.exitCode).toBe(255);
    expect(big.stderr).toContain("'input-data' (STDIN) is limited to 1 MiB, aborting");
    // Exactly 1 MiB is accepted; then the missing VM is what fails.
    const max = await driver.run(['qm', 'guest', 'exec', '4000', '--pass-stdin', '1', '--', '/bin/cat'], {}, { okCodes: [0, 2, 255], input: Buffer.alloc(1024 * 1024, 0x61) });
    expect(max.stderr).not.toContain('limited to 1 MiB');
    expect(max.exitCode).not.toBe(0);
  });

  it('hostile words arrive byte-identical at the remote program; nothing is executed by the shell', async () => {
    const marker = `${standin.dir}/pwned`;
    const rand = prng(4242);
    const words = [`$(touch ${marker})`, `\`touch ${marker}\``, `'; touch ${marker}; '`, `"; touch ${marker}; "`, `| touch ${marker}`, `&& touch ${marker}`, ...Array.from({ length: 300 }, () => hostileString(rand))];
    const r = await driver.run(['printf', '%s\\0', ...words]);
    expect(r.stdout.split('\u0000').slice(0, -1)).toEqual(words);
    expect(existsSync(marker)).toBe(false);
  });
});
