// A free TCP port on the loopback for a server about to be started by a test or benchmark. It is chosen below the
// kernel's ephemeral range, which the OS's own pick (port 0) comes from: a port picked that way and released could be
// taken as the source port of any outgoing connection before the server binds it (an 800-symbol bench:e2e run lost its
// metrics worker's port to one of the ingestion's sockets so). Each candidate is checked by listening on it.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const LOWEST = 10_000;

/** The first port of the ephemeral range (Linux; 32768, its default, elsewhere). */
function ephemeralFirst(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > LOWEST + 1_000 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

function listens(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePort(): Promise<number> {
  const below = ephemeralFirst();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (below - LOWEST));
    if (await listens(port)) return port;
  }
  throw new Error(`no free port found between ${LOWEST} and ${below}`);
}
