// A free TCP port on the loopback for a server about to be started by a test or benchmark. The OS picks it and it is
// released before use: another process could take it in between, which these machines have not shown.
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}
