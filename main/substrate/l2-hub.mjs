#!/usr/bin/env node
// The isolated L2 of a local cluster: a tiny Ethernet hub on a unix socket. Each VM's NIC is
// `-netdev stream,addr.type=unix,addr.path=HUB.sock`; QEMU sends frames as a 4-byte big-endian
// length followed by the frame. Every frame goes to every other port. There is no uplink, so the
// network reaches nothing outside this machine (and not the host either).
// usage: node l2-hub.mjs SOCKET PIDFILE            (run detached by the qemu-local driver)
import { createServer } from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';

const [socketPath, pidFile] = process.argv.slice(2);
if (!socketPath || !pidFile) {
  process.stderr.write('usage: l2-hub.mjs SOCKET PIDFILE\n');
  process.exit(2);
}
const ports = new Set();
rmSync(socketPath, { force: true });
const server = createServer((sock) => {
  ports.add(sock);
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 4) {
      const len = buf.readUInt32BE(0);
      if (len > 65536 + 4) {
        sock.destroy();
        return;
      }
      if (buf.length < 4 + len) break;
      const frame = buf.subarray(0, 4 + len);
      buf = buf.subarray(4 + len);
      for (const other of ports) if (other !== sock && !other.destroyed) other.write(frame);
    }
  });
  const drop = () => ports.delete(sock);
  sock.on('close', drop);
  sock.on('error', drop);
});
server.listen(socketPath, () => writeFileSync(pidFile, `${process.pid}\n`));
const stop = () => {
  server.close();
  rmSync(socketPath, { force: true });
  rmSync(pidFile, { force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
