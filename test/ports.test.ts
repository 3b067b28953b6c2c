import { readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from './ports.ts';

describe('freePort', () => {
  it('gives a port a server can listen on, below the range outgoing connections take their source ports from', async () => {
    const server = createServer((s) => s.resume());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const target = (server.address() as { port: number }).port;
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const s = connect(target, '127.0.0.1');
        await new Promise((r) => s.once('connect', r));
        sockets.push(s);
      }
      const sourcePorts = sockets.map((s) => s.localPort!);
      const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
      for (const p of sourcePorts) expect(p).toBeGreaterThanOrEqual(first);
      for (let i = 0; i < 20; i++) {
        const port = await freePort();
        expect(port).toBeLessThan(first);
        expect(port).toBeGreaterThanOrEqual(10_000);
        const s = createServer();
        await new Promise<void>((resolve, reject) => s.once('error', reject).listen(port, '127.0.0.1', resolve));
        await new Promise((r) => s.close(r));
      }
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
