// The client against a real WebSocket server (the `ws` package's) and raw sockets on 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { WsClient } from './ws-client.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function wsServer(onConnection: (ws: WebSocket) => void): Promise<string> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', onConnection);
  closers.push(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  });
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/stream?streams=btcusdt@trade`;
}

async function httpServer(onUpgrade: (req: import('node:http').IncomingMessage, socket: import('node:stream').Duplex) => void): Promise<string> {
  const server: Server = createServer((_req, res) => res.writeHead(404).end());
  const sockets: import('node:stream').Duplex[] = [];
  server.on('upgrade', (req, socket) => {
    sockets.push(socket);
    onUpgrade(req, socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    // Upgraded sockets are the test's: the server would wait for them.
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

/** A client recording what it is told, with `closed` resolving on its close. */
function client(url: string, maxPayload = 1 << 20, handshakeTimeoutMs = 5_000) {
  const events: string[] = [];
  let resolveClosed!: (v: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
  const errors: { message: string; oversized: boolean }[] = [];
  const readAts: number[] = [];
  const ws = new WsClient(url, { handshakeTimeoutMs, maxPayload }, {
    open: () => events.push('open'),
    message: (text, binary, readAtMs) => {
      events.push(`${binary ? 'bin' : 'text'}:${text}`);
      readAts.push(readAtMs);
    },
    ping: () => events.push('ping'),
    error: (err, oversized) => errors.push({ message: err.message, oversized }),
    close: (code, reason) => {
      events.push(`close:${code}`);
      resolveClosed({ code, reason });
    },
  });
  closers.push(async () => {
    ws.terminate();
    await closed;
  });
  return { ws, events, errors, closed, readAts };
}

const until = async (check: () => boolean, ms = 5_000) => {
  for (const end = Date.now() + ms; !check(); ) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('WsClient', () => {
  it('opens, reads messages, answers pings with their payload, sends text and ends on the server close', async () => {
    const got: string[] = [];
    const pongs: string[] = [];
    const url = await wsServer((ws) => {
      ws.on('message', (m) => got.push(m.toString()));
      ws.on('pong', (p) => pongs.push(p.toString()));
      ws.send('{"stream":"btcusdt@trade","data":{}}');
      ws.ping('1733480000000');
      ws.send(Buffer.from([0xe9]), { binary: true });
      ws.send('x'.repeat(200_000));
      setTimeout(() => ws.close(1001, 'going away'), 100);
    });
    const t0 = performance.now();
    const c = client(url);
    await until(() => c.events.includes('open'));
    c.ws.send('{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":1}');
    expect(await c.closed).toEqual({ code: 1001, reason: 'going away' });
    expect(c.events).toEqual(['open', 'text:{"stream":"btcusdt@trade","data":{}}', 'ping', 'bin:é', `text:${'x'.repeat(200_000)}`, 'close:1001']);
    expect(pongs).toEqual(['1733480000000']);
    expect(got).toEqual(['{"method":"SUBSCRIBE","params":["ethusdt@trade"],"id":1}']);
    expect(c.ws.closed).toBe(true);
    // Each message carries the clock reading of the socket read that completed it: never before the connection, never decreasing.
    expect(c.readAts).toHaveLength(3);
    expect(c.readAts[0]).toBeGreaterThan(t0);
    for (let i = 1; i < c.readAts.length; i++) expect(c.readAts[i]).toBeGreaterThanOrEqual(c.readAts[i - 1]!);
  });

  it('closes with the handshake: the server sees its code and reason', async () => {
    let serverSaw: [number, string] | undefined;
    const url = await wsServer((ws) => ws.on('close', (code, reason) => (serverSaw = [code, reason.toString()])));
    const c = client(url);
    await until(() => c.events.includes('open'));
    c.ws.close(1000, 'stopping');
    expect((await c.closed).code).toBe(1000);
    await until(() => serverSaw !== undefined);
    expect(serverSaw).toEqual([1000, 'stopping']);
  });

  it('refuses a message over maxPayload with 1009 before buffering it, and says it was oversized', async () => {
    let serverSaw: number | undefined;
    const url = await wsServer((ws) => {
      ws.on('close', (code) => (serverSaw = code));
      ws.send('small');
      ws.send('y'.repeat(5_000));
      ws.send('never read');
    });
    const c = client(url, 4_096);
    await c.closed;
    // No close frame is read after the refusal: the connection ends as abnormal (1006), the server saw 1009.
    expect(c.events).toEqual(['open', 'text:small', 'close:1006']);
    expect(c.errors).toEqual([{ message: 'a message over 4096 bytes', oversized: true }]);
    await until(() => serverSaw !== undefined);
    expect(serverSaw).toBe(1009);
  });

  it('holds messages back while paused', async () => {
    let server: WebSocket | undefined;
    const url = await wsServer((ws) => (server = ws));
    const c = client(url);
    await until(() => c.events.includes('open') && server !== undefined);
    c.ws.pause();
    server!.send('while paused');
    await new Promise((r) => setTimeout(r, 200));
    expect(c.events).toEqual(['open']);
    c.ws.resume();
    await until(() => c.events.length === 2);
    expect(c.events[1]).toBe('text:while paused');
  });

  it('ends with 1006 when terminated or when the server drops the socket', async () => {
    let server: WebSocket | undefined;
    const url = await wsServer((ws) => (server = ws));
    const a = client(url);
    await until(() => a.events.includes('open'));
    a.ws.terminate();
    expect((await a.closed).code).toBe(1006);
    const b = client(url);
    await until(() => b.events.includes('open') && server !== undefined);
    server!.terminate();
    expect((await b.closed).code).toBe(1006);
  });

  it('fails an upgrade the server refuses, answers wrongly, or never answers', async () => {
    const notFound = client(await httpServer((_req, socket) => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n')));
    expect((await notFound.closed).code).toBe(1006);
    expect(notFound.errors[0]!.message).toMatch(/upgrade|404|socket hang up/);
    const wrongKey = client(await httpServer((_req, socket) => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSBrZXk=\r\n\r\n')));
    expect((await wrongKey.closed).code).toBe(1006);
    expect(wrongKey.errors[0]!.message).toMatch(/Sec-WebSocket-Accept/);
    const silent = client(await httpServer(() => undefined), 1 << 20, 200);
    expect((await silent.closed).code).toBe(1006);
    expect(silent.errors[0]!.message).toMatch(/no WebSocket upgrade within 200 ms/);
    for (const c of [notFound, wrongKey, silent]) expect(c.events).not.toContain('open');
  });

  it('echoes a server close whose code a frame may not carry (1006) without the code', async () => {
    let echoed: Buffer | undefined;
    const url = await httpServer((req, socket) => {
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      socket.write(Buffer.from([0x88, 2, 0x03, 0xee])); // close, code 1006
      socket.on('data', (d: Buffer) => (echoed = d));
    });
    const c = client(url);
    expect((await c.closed).code).toBe(1006);
    await until(() => echoed !== undefined);
    // A masked close frame with an empty body: FIN + close, mask bit, length 0, then the 4 mask bytes.
    expect([echoed![0], echoed![1], echoed!.length]).toEqual([0x88, 0x80, 6]);
  });

  it('speaks TLS for wss:// and refuses a certificate no CA vouches for', async (ctx) => {
    const dir = mkdtempSync(join(tmpdir(), 'ws-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
    } catch {
      ctx.skip('openssl is not installed');
    }
    const server = createHttpsServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) });
    let handshakes = 0;
    server.on('secureConnection', () => handshakes++);
    const wss = new WebSocketServer({ server, perMessageDeflate: false });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(async () => {
      await new Promise<void>((r) => wss.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    });
    const c = client(`wss://127.0.0.1:${(server.address() as AddressInfo).port}/stream?streams=btcusdt@trade`);
    expect((await c.closed).code).toBe(1006);
    expect(c.errors[0]!.message).toMatch(/self[- ]signed/);
    expect(c.events).not.toContain('open');
    expect(handshakes).toBe(0);
  });

  it('fails a connection nobody listens for, and refuses a URL that is not ws:// or wss://', async () => {
    const tcp = createTcpServer();
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const port = (tcp.address() as AddressInfo).port;
    await new Promise<void>((r) => tcp.close(() => r()));
    const c = client(`ws://127.0.0.1:${port}/`);
    expect((await c.closed).code).toBe(1006);
    expect(c.errors[0]!.message).toMatch(/ECONNREFUSED/);
    expect(() => new WsClient('http://127.0.0.1:1/', { handshakeTimeoutMs: 1_000, maxPayload: 1_000 }, { open() {}, message() {}, ping() {}, error() {}, close() {} })).toThrow(/not a WebSocket URL/);
  });
});
