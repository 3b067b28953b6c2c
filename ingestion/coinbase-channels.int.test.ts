// Coinbase's books channels against the local stand-in (a real WebSocket on 127.0.0.1) and the real Kafka broker: the
// default configuration subscribes to level2_batch; with key, secret and passphrase the worker sends a signed level2
// subscription the stand-in verifies; both build the books the recording builds. A wrong secret is refused by the
// stand-in, and the worker says so (log, refused-subscriptions counter, /healthz 503 naming the channel) while its
// trades go on, with no reconnect and no book.
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { decodeBook, type Book } from '../common/records.ts';
import { BinanceServer, SHARED_DATA } from '../test/binance-server.ts';
import { ingestTestConfig, metricValue, readTopics, waitFor } from '../test/binance-topics.ts';
import { missing, testLog, testTopic } from '../test/services.ts';
import { VenueServer, type VenueServerOptions } from '../test/venue-server.ts';
import { readCryptofeedCapture } from './book/cryptofeed-capture.ts';
import type { VenueOutput } from './book/output.ts';
import { CoinbaseSession } from './coinbase/session.ts';
import { startIngestion } from './worker.ts';

const COINBASE = `${SHARED_DATA}/cryptofeed/COINBASE.ws.28.0`;
const skip = (await missing('kafka')) ?? (existsSync(COINBASE) ? undefined : `needs the cryptofeed recording ${COINBASE}`);

const SECRET = Buffer.from('the stand-in account secret, 32 b').toString('base64');
const CREDS = { key: 'stand-in-key', secret: SECRET, passphrase: 'stand-in passphrase' };
const credentialEnv = (c: typeof CREDS) => ({ COINBASE_API_KEY: c.key, COINBASE_API_SECRET: c.secret, COINBASE_API_PASSPHRASE: c.passphrase });

/** A book as the comparison sees it: what the venue's data decides, not when it was received. */
const bookView = (b: Book) => `${b.symbol} ${b.sequence} ${JSON.stringify(b.bids)} ${JSON.stringify(b.asks)}`;

describe.skipIf(skip)('Coinbase books channels on the stand-in', () => {
  const cap = readCryptofeedCapture(COINBASE);
  const products = (JSON.parse(cap.sent[0]!) as { product_ids: string[] }).product_ids;
  const matches = cap.frames.filter((f) => /"type":"(last_)?match"/.test(f.text)).length;
  // The books the recording builds, without sockets: what every run that is granted its books must publish.
  const expectedBooks = (() => {
    const s = new CoinbaseSession({ depth: 20, intervalMs: 0 });
    const out: VenueOutput[] = [];
    for (const f of cap.frames) s.frame(f.text, f.receiveTimeUs, out);
    return out.flatMap((o) => (o.kind === 'book' ? [bookView(o.record)] : []));
  })();

  /** One worker on a fresh stand-in and fresh topics, until every frame sent is handled and produced. */
  async function run(server: Pick<VenueServerOptions, 'credentials'>, env: Record<string, string>) {
    const coinbase = await VenueServer.start({ frames: cap.frames, ...server });
    const binance = await BinanceServer.start({ recording: { events: [], trades: new Map(), aggTrades: new Map(), depthSnapshots: new Map() } });
    const config = await ingestTestConfig(binance, { SYMBOLS: 'BTCUSDT', STREAM_TYPES: 'trade', COINBASE_PRODUCTS: products.join(','), COINBASE_WS_URL: coinbase.wsUrl, TOPIC_BOOKS: testTopic('cb-books'), ...env });
    const w = await startIngestion(config, { log: testLog });
    try {
      await waitFor(() => coinbase.connectionsAccepted === 1, 10_000, 'the Coinbase connection');
      await waitFor(() => coinbase.received.length >= (config.venues.coinbase.credentials ? 2 : 1), 10_000, 'the subscriptions');
      await coinbase.finished();
      const received = () => metricValue(w.metrics.registry, 'tickwatch_ingestion_messages_received_total', { stream: 'coinbase' });
      await waitFor(async () => (await received()) >= coinbase.sent && w.producer.depth === 0, 30_000, 'every Coinbase frame to be handled');
      const topics = await readTopics(config, [config.books.topic, config.kafka.topics.trade]);
      const books = topics.get(config.books.topic)!.map((r) => bookView(decodeBook(Buffer.from(r.value), r.headers['schema-version'])));
      const trades = topics.get(config.kafka.topics.trade)!.length;
      const res = await fetch(`http://127.0.0.1:${w.http!.port}/healthz`);
      const health = { status: res.status, body: (await res.json()) as { ok: boolean; books: Record<string, unknown> } };
      const refusedMetric = await metricValue(w.metrics.registry, 'tickwatch_ingestion_subscriptions_refused_total', { venue: 'coinbase' });
      const reconnects = await metricValue(w.metrics.registry, 'tickwatch_ingestion_reconnects_total');
      const sent = coinbase.received.map((m) => JSON.parse(m) as Record<string, unknown>);
      return { coinbase, books, trades, health, refusedMetric, reconnects, sent };
    } finally {
      await w.stop('test over');
      await Promise.all([coinbase.close(), binance.close()]);
    }
  }

  /** Books of one symbol in publication order (each symbol keeps to one partition, so only that order is kept). */
  const bySymbol = (books: readonly string[]) => {
    const m = new Map<string, string[]>();
    for (const b of books) m.set(b.split(' ')[0]!, [...(m.get(b.split(' ')[0]!) ?? []), b]);
    return m;
  };

  it('subscribes to level2_batch without credentials and builds the recording\'s books', async () => {
    expect(expectedBooks.length).toBeGreaterThan(1000);
    const r = await run({}, {});
    expect(r.sent).toEqual([{ type: 'subscribe', product_ids: products, channels: ['level2_batch', 'ticker', 'matches'] }]);
    expect(r.coinbase.refusals).toEqual([]);
    expect(bySymbol(r.books)).toEqual(bySymbol(expectedBooks));
    expect(r.trades).toBe(matches);
    expect(r.health).toMatchObject({ status: 200, body: { ok: true, books: { coinbase: { channel: 'level2_batch', state: 'subscribed', reason: null } } } });
    expect(r.refusedMetric).toBe(0);
  });

  it('sends a signed level2 subscription with credentials, which the stand-in accepts, and builds the same books', async () => {
    const r = await run({ credentials: CREDS }, credentialEnv(CREDS));
    expect(r.sent).toHaveLength(2);
    expect(r.sent[0]).toEqual({ type: 'subscribe', product_ids: products, channels: ['level2'], key: CREDS.key, passphrase: CREDS.passphrase, timestamp: expect.stringMatching(/^\d{10}$/), signature: expect.any(String) });
    expect(Math.abs(Number(r.sent[0]!.timestamp) * 1000 - Date.now())).toBeLessThan(120_000);
    expect(r.sent[1]).toEqual({ type: 'subscribe', product_ids: products, channels: ['ticker', 'matches'] });
    expect(r.coinbase.refusals).toEqual([]);
    expect(bySymbol(r.books)).toEqual(bySymbol(expectedBooks));
    expect(r.trades).toBe(matches);
    expect(r.health).toMatchObject({ status: 200, body: { ok: true, books: { coinbase: { channel: 'level2', state: 'subscribed' } } } });
  });

  it('the stand-in refuses level2 unsigned, as Coinbase does, and sends no level2 data (the old subscription)', async () => {
    const coinbase = await VenueServer.start({ frames: cap.frames, credentials: CREDS });
    const ws = new WebSocket(coinbase.wsUrl);
    const got: { type: string; reason?: string }[] = [];
    ws.on('message', (d: Buffer) => got.push(JSON.parse(d.toString()) as { type: string }));
    try {
      await new Promise((r) => ws.once('open', r));
      ws.send(JSON.stringify({ type: 'subscribe', product_ids: products, channels: ['level2'] }));
      ws.send(JSON.stringify({ type: 'subscribe', product_ids: products, channels: ['ticker', 'matches'] }));
      await coinbase.finished();
      await waitFor(() => got.length === coinbase.sent, 10_000, 'every frame sent');
      expect(got[0]).toEqual({ type: 'error', message: 'Failed to subscribe', reason: expect.stringMatching(/authentication required/) });
      expect(got.filter((m) => m.type === 'snapshot' || m.type === 'l2update')).toEqual([]);
      expect(got.filter((m) => m.type === 'match' || m.type === 'last_match')).toHaveLength(matches);
    } finally {
      ws.close();
      await coinbase.close();
    }
  });

  it('reports a refused level2 subscription (wrong secret): no books, /healthz 503 with the reason, counted once; trades go on, no reconnect', async () => {
    const wrong = { ...CREDS, secret: Buffer.from('some other secret').toString('base64') };
    const r = await run({ credentials: CREDS }, credentialEnv(wrong));
    expect(r.coinbase.refusals).toEqual(['invalid signature']);
    expect(r.books).toEqual([]);
    expect(r.trades).toBe(matches);
    expect(r.health).toMatchObject({
      status: 503,
      body: { ok: false, books: { coinbase: { channel: 'level2', state: 'refused', reason: 'Failed to subscribe: invalid signature' } } },
    });
    expect(r.refusedMetric).toBe(1);
    expect(r.coinbase.connectionsAccepted).toBe(1);
    expect(r.reconnects).toBe(0);
    expect(JSON.stringify(r.sent)).not.toContain(wrong.secret);
  });
});
