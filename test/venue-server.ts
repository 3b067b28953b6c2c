// A local stand-in for Coinbase Exchange or Gemini on 127.0.0.1, for tests: a WebSocket server that waits for a
// client's subscribe message and then replays a cryptofeed recording (../shared/data/cryptofeed) to it, as fast as it
// reads, optionally mixing extra (e.g. malformed) frames in. It speaks no more of the protocol than that.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { CryptofeedFrame } from '../ingestion/book/cryptofeed-capture.ts';

export interface VenueServerOptions {
  readonly frames: readonly CryptofeedFrame[];
  /** Extra raw frames sent after recorded frame i. */
  readonly extraFrames?: (i: number) => readonly string[] | undefined;
}

export class VenueServer {
  readonly wsUrl: string;
  connectionsAccepted = 0;
  /** Every text message clients sent (subscriptions). */
  readonly received: string[] = [];
  /** Frames sent to clients, recorded and extra. */
  sent = 0;
  private readonly clients = new Set<WebSocket>();
  private readonly finishedClients: Promise<void>[] = [];

  private constructor(
    private readonly opts: VenueServerOptions,
    private readonly http: Server,
    private readonly wss: WebSocketServer,
  ) {
    this.wsUrl = `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
  }

  static async start(opts: VenueServerOptions): Promise<VenueServer> {
    const http = createServer((_, res) => res.writeHead(404).end());
    const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const s = new VenueServer(opts, http, wss);
    wss.on('connection', (ws) => s.accept(ws));
    return s;
  }

  /** Resolves once every connection so far has been sent the whole recording. */
  async finished(): Promise<void> {
    await Promise.all(this.finishedClients);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    this.http.closeAllConnections();
    await new Promise<void>((r) => this.http.close(() => r()));
  }

  private accept(ws: WebSocket): void {
    this.connectionsAccepted++;
    this.clients.add(ws);
    ws.on('close', () => this.clients.delete(ws));
    ws.on('error', () => this.clients.delete(ws));
    this.finishedClients.push(
      new Promise<void>((done) => {
        let replaying = false;
        ws.on('message', (data) => {
          this.received.push(data.toString());
          if (replaying) return;
          replaying = true;
          void this.replay(ws).then(done);
        });
        ws.once('close', () => done());
      }),
    );
  }

  /** The recording in order, a few hundred frames per turn of the event loop, pausing while the client lags. */
  private async replay(ws: WebSocket): Promise<void> {
    const frames = this.opts.frames;
    for (let i = 0; i < frames.length; i++) {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(frames[i]!.text);
      this.sent++;
      for (const x of this.opts.extraFrames?.(i) ?? []) {
        ws.send(x);
        this.sent++;
      }
      if (i % 200 === 199) {
        while (ws.bufferedAmount > 1024 * 1024) await new Promise((r) => setTimeout(r, 5));
        await new Promise((r) => setImmediate(r));
      }
    }
  }
}
