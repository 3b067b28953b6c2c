// The ingestion's WebSocket client: the HTTP upgrade (ws:// or wss://, the server's accept key checked, no extension),
// then the socket's bytes through the pure frame reader (ws-frames.ts). It answers pings with the same payload, sends
// text, pauses and resumes reading, and closes with the close handshake or at once (terminate). Every end — a close
// frame, a refused or failed upgrade, a protocol error, a dropped socket — ends in exactly one `close` call.
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { clientFrame, FrameError, FrameReader, OP_CLOSE, OP_PONG } from './ws-frames.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** What the connection ends with when no close frame came: RFC 6455's "abnormal closure". */
const ABNORMAL = 1006;
/** How long a close handshake may take before the socket is destroyed. */
const CLOSE_WAIT_MS = 5_000;

/** Close codes a close frame may carry (RFC 6455 7.4: not 1004-1006 nor 1015, which only report). */
const sendable = (code: number): boolean => (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);

export interface WsHandlers {
  open(): void;
  /**
   * A whole message: text as UTF-8, a binary one read as latin1. `readAtMs` is the performance.now() of the socket read
   * that completed it: one clock read per chunk serves every message in it (a read per message was 2 % of the worker).
   */
  message(text: string, binary: boolean, readAtMs: number): void;
  ping(): void;
  /** Something went wrong; `close` follows. `oversized` is set for a message over maxPayload (closed with 1009). */
  error(err: Error, oversized: boolean): void;
  /** Called once, when the connection is over: the server's close code and reason, or 1006 when it sent none. */
  close(code: number, reason: string): void;
}

export interface WsOptions {
  readonly handshakeTimeoutMs: number;
  readonly maxPayload: number;
}

export class WsClient {
  private readonly request: ClientRequest;
  private socket: Socket | undefined;
  private readonly mask = Buffer.alloc(4);
  private ended = false;
  private closeSent = false;
  private received: { code: number; reason: string } | undefined;
  private readonly timer: NodeJS.Timeout;
  private closeTimer: NodeJS.Timeout | undefined;
  private readAtMs = 0;

  constructor(
    url: string,
    opts: WsOptions,
    private readonly on: WsHandlers,
  ) {
    const u = new URL(url);
    if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`not a WebSocket URL (ws:// or wss://): ${u.protocol}`);
    const key = randomBytes(16).toString('base64');
    const request = u.protocol === 'wss:' ? httpsRequest : httpRequest;
    this.request = request({
      hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: u.port === '' ? (u.protocol === 'wss:' ? 443 : 80) : Number(u.port),
      path: `${u.pathname}${u.search}`,
      agent: false,
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key },
    });
    this.timer = setTimeout(() => this.fail(new Error(`no WebSocket upgrade within ${opts.handshakeTimeoutMs} ms`)), opts.handshakeTimeoutMs);
    this.request.on('error', (err) => this.fail(err));
    this.request.on('response', (res: IncomingMessage) => {
      res.resume();
      this.fail(new Error(`the server answered the upgrade with HTTP ${res.statusCode}`));
    });
    this.request.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      clearTimeout(this.timer);
      if (this.ended) return void socket.destroy();
      this.socket = socket;
      socket.on('error', (err) => this.on.error(err, false));
      socket.on('close', () => this.finish());
      const accept = createHash('sha1').update(key + GUID).digest('base64');
      if (res.headers['sec-websocket-accept'] !== accept) return this.fail(new Error('the server sent a wrong Sec-WebSocket-Accept'));
      if (res.headers['sec-websocket-extensions'] !== undefined) return this.fail(new Error('the server chose an extension none was asked for'));
      this.attach(socket, head, opts.maxPayload);
    });
    this.request.end();
  }

  /** Whether the connection is over (closed, failed or never opened). */
  get closed(): boolean {
    return this.ended;
  }

  send(text: string): void {
    this.write(0x1, Buffer.from(text));
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  /** The close handshake: sends a close frame and ends once the server answers (or its socket closes). */
  close(code: number, reason: string): void {
    if (this.ended) return;
    if (this.socket === undefined) return this.fail(new Error('closed before the WebSocket opened'));
    this.sendClose(code, reason);
  }

  /** Ends the connection at once, without a close handshake. */
  terminate(): void {
    if (this.ended) return;
    if (this.socket === undefined) return this.fail(new Error('terminated before the WebSocket opened'));
    this.socket.destroy();
  }

  private attach(socket: Socket, head: Buffer, maxPayload: number): void {
    socket.setNoDelay(true);
    socket.setTimeout(0);
    const reader = new FrameReader(maxPayload, {
      message: (text, binary) => this.on.message(text, binary, this.readAtMs),
      ping: (payload) => {
        this.write(OP_PONG, payload);
        this.on.ping();
      },
      close: (code, reason) => {
        this.received = { code, reason };
        // Echo the close unless it answers ours (its code if one a close frame may carry), then end the connection.
        if (!this.closeSent) this.sendClose(sendable(code) ? code : undefined, '');
        socket.end();
      },
    });
    const take = (chunk: Buffer): void => {
      this.readAtMs = performance.now();
      try {
        reader.push(chunk);
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        this.on.error(err, err.status === 1009);
        this.sendClose(err.status, '');
        socket.end();
      }
    };
    socket.on('data', take);
    this.on.open();
    if (head.length > 0) take(head);
  }

  private write(opcode: number, payload: Buffer): void {
    const s = this.socket;
    if (s === undefined || s.destroyed || !s.writable) return;
    randomFillSync(this.mask);
    s.write(clientFrame(opcode, payload, this.mask));
  }

  /** Sends a close frame (with `code`, or none) and gives the server CLOSE_WAIT_MS to end the connection. */
  private sendClose(code: number | undefined, reason: string): void {
    if (this.closeSent) return;
    this.closeSent = true;
    this.closeTimer = setTimeout(() => this.socket?.destroy(), CLOSE_WAIT_MS).unref();
    if (code === undefined) return this.write(OP_CLOSE, Buffer.alloc(0));
    const body = Buffer.alloc(2 + Buffer.byteLength(reason));
    body.writeUInt16BE(code, 0);
    body.write(reason, 2);
    this.write(OP_CLOSE, body);
  }

  /** The upgrade failed or was abandoned: report it, then close. */
  private fail(err: Error): void {
    if (this.ended) return;
    clearTimeout(this.timer);
    this.on.error(err, false);
    this.request.destroy();
    this.socket?.destroy();
    if (this.socket === undefined) this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    clearTimeout(this.closeTimer);
    this.on.close(this.received?.code ?? ABNORMAL, this.received?.reason ?? '');
  }
}
