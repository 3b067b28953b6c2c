// The worker against real Kafka and the local Binance stand-in: every recorded message of the 9 default streams
// reaches its topic once and in order; malformed frames go to the dead-letter topic without disturbing the rest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeTick } from '../common/records.ts';
import { BinanceServer, expectedIds, loadRecording, missingRecordings, type Recording } from '../test/binance-server.ts';
import { drained, expectedBookTickers, idsBySymbol, ingestTestConfig, metricValue, readTopics, ticksOf, waitFor } from '../test/binance-topics.ts';
import { missing, testLog } from '../test/services.ts';
import { startIngestion } from './worker.ts';

const skip = (await missing('kafka')) ?? missingRecordings();

describe.skipIf(skip)('ingestion: all 9 default streams', () => {
  let rec: Recording;
  beforeAll(async () => {
    rec = await loadRecording({ maxEvents: 30_000 });
  });

  it('delivers every recorded trade, aggTrade and book ticker once, in order per symbol, answering pings', async () => {
    const server = await BinanceServer.start({ recording: rec, rate: 20_000, autoplay: false, pingIntervalMs: 200 });
    const config = await ingestTestConfig(server);
    const w = await startIngestion(config, { log: testLog });
    try {
      await waitFor(() => server.openConnections === 1, 10_000, 'the connection');
      server.play();
      await drained(w, server);
      const t = config.kafka.topics;
      const topics = await readTopics(config, [t.trade, t.aggTrade, t.bookTicker, t.deadLetter, t.gap]);
      const trades = ticksOf(topics.get(t.trade)!);
      const aggs = ticksOf(topics.get(t.aggTrade)!);
      const books = ticksOf(topics.get(t.bookTicker)!);
      expect(idsBySymbol(trades)).toEqual(expectedIds(rec, 'trade'));
      expect(idsBySymbol(aggs)).toEqual(expectedIds(rec, 'aggTrade'));
      const bookCount = new Map<string, number>();
      for (const b of books) bookCount.set(b.symbol, (bookCount.get(b.symbol) ?? 0) + 1);
      expect(bookCount).toEqual(expectedBookTickers(rec));
      expect([...expectedIds(rec, 'trade').keys()].sort()).toEqual(['BNBUSDT', 'BTCUSDT', 'ETHUSDT']);
      // Keys keep a symbol in one partition; the schema version travels in the value (`"v":1`, last), not in headers,
      // and the decoders drop it again; a record of another version is refused, from either place.
      for (const r of topics.get(t.trade)!) {
        expect(r.headers).toEqual({});
        expect(r.value.endsWith(',"v":1}')).toBe(true);
      }
      expect(trades.every((tr) => !('v' in tr))).toBe(true);
      const one = topics.get(t.trade)![0]!.value;
      expect(decodeTick(Buffer.from(one), '1')).toEqual(trades[0]);
      expect(() => decodeTick(Buffer.from(one.replace(/,"v":1}$/, ',"v":2}')), undefined)).toThrow(/unsupported schema version 2/);
      expect(() => decodeTick(Buffer.from(one), '2')).toThrow(/unsupported schema version 2/);
      expect(decodeTick(Buffer.from(one.replace(/,"v":1}$/, '}')), '1')).toEqual(trades[0]);
      expect(new Set(topics.get(t.trade)!.filter((r) => r.key === 'binance:spot:BTCUSDT').map((r) => r.partition)).size).toBe(1);
      expect(topics.get(t.deadLetter)).toHaveLength(0);
      expect(topics.get(t.gap)).toHaveLength(0);
      const reg = w.metrics.registry;
      for (const s of ['btcusdt', 'ethusdt', 'bnbusdt']) for (const k of ['trade', 'aggTrade', 'bookTicker']) expect(await metricValue(reg, 'tickwatch_ingestion_messages_received_total', { stream: `${s}@${k}` })).toBeGreaterThan(0);
      expect(await metricValue(reg, 'tickwatch_ingestion_reconnects_total')).toBe(0);
      expect(server.connectionsAccepted).toBe(1);
      expect(server.pongs).toBeGreaterThan(0);
      // /metrics and /healthz are served.
      const metrics = await (await fetch(`http://127.0.0.1:${w.http!.port}/metrics`)).text();
      expect(metrics).toContain('tickwatch_ingestion_records_produced_total');
      expect((await fetch(`http://127.0.0.1:${w.http!.port}/healthz`)).status).toBe(200);
    } finally {
      await w.stop('test over');
      await server.close();
    }
  });
});

// A real recorded trade frame the malformed ones are made from.
const TEMPLATE =
  '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}';

/** Kinds of bad frames, each with the reason it must be dead-lettered for. */
function malformed(i: number, valid: string): string | Buffer {
  const kinds: (() => string | Buffer)[] = [
    () => 'this is not json',
    () => valid.slice(0, Math.max(1, valid.length - 7)), // truncated
    () => '',
    () => 'null',
    () => '[1,2,3]',
    () => '{"data":{"e":"trade"}}',
    () => valid.replace(/"p":"[^"]*"/, '"p":"0.00000000"'),
    () => valid.replace(/"p":"[^"]*"/, '"p":"-5.1"'),
    () => valid.replace(/"q":"[^"]*"/, '"q":"NaN"'),
    () => valid.replace(/"q":"[^"]*"/, '"q":"Infinity"'),
    () => valid.replace(/"p":"([^"]*)"/, '"p":$1'), // number instead of decimal string
    () => valid.replace(/"T":\d+/, '"T":"soon"'),
    () => valid.replace(/"t":\d+,/, ''),
    () => valid.replace(/"s":"[A-Z]+"/, '"s":"XRPUSDT"'),
    () => `{"stream":"btcusdt@trade","data":{"e":"trade","pad":"${'x'.repeat(5000)}"}}`, // oversized
    () => `\u0000\u0001\u0002${'\uFFFD'.repeat(3)}`,
    () => valid.replace(/"m":(true|false)/, '"m":1'),
    () => valid.replace(/"t":\d+/, '"t":1e400'),
    // Not UTF-8: a 0xFF byte inside the symbol (a dead letter, not a closed connection).
    () => Buffer.from(valid.replace('"s":"BTCUSDT"', '"s":"BTC\u00ffUSDT"'), 'latin1'),
  ];
  return kinds[i % kinds.length]!();
}

describe.skipIf(skip)('ingestion: bad input', () => {
  it('dead-letters 10,000 malformed frames with reasons, delivers every valid message, never reconnects', async () => {
    const rec = await loadRecording({ maxEvents: 20_000, symbols: ['BTCUSDT', 'ETHUSDT'] });
    let injected = 0;
    const server = await BinanceServer.start({
      recording: rec,
      rate: 20_000,
      autoplay: false,
      extraFrames: () => (injected < 10_000 ? [malformed(injected++, TEMPLATE)] : undefined),
    });
    const config = await ingestTestConfig(server, { MAX_FRAME_BYTES: '4096', DEAD_LETTER_MAX_BYTES: '256', SYMBOLS: 'BTCUSDT,ETHUSDT' });
    const w = await startIngestion(config, { log: testLog });
    try {
      await waitFor(() => server.openConnections === 1, 10_000, 'the connection');
      server.play();
      await drained(w, server);
      expect(injected).toBe(10_000);
      const t = config.kafka.topics;
      const topics = await readTopics(config, [t.trade, t.aggTrade, t.bookTicker, t.deadLetter]);
      const dead = topics.get(t.deadLetter)!.map((r) => JSON.parse(r.value) as Record<string, unknown>);
      expect(dead).toHaveLength(10_000);
      for (const d of dead) {
        expect(d).toMatchObject({ type: 'deadLetter', source: 'binance-spot' });
        expect(typeof d.reason).toBe('string');
        expect((d.reason as string).length).toBeGreaterThan(3);
        expect(Buffer.byteLength(d.raw as string)).toBeLessThanOrEqual(256);
        expect(d.receiveTimeUs).toBeGreaterThan(1.7e15);
      }
      expect(dead.some((d) => d.truncated === true && /exceeds 4096 bytes/.test(d.reason as string))).toBe(true);
      expect(new Set(dead.map((d) => (d.reason as string).split(':')[0])).size).toBeGreaterThanOrEqual(12);
      expect(idsBySymbol(ticksOf(topics.get(t.trade)!))).toEqual(expectedIds(rec, 'trade'));
      expect(idsBySymbol(ticksOf(topics.get(t.aggTrade)!))).toEqual(expectedIds(rec, 'aggTrade'));
      expect(topics.get(t.bookTicker)!.length).toBe([...expectedBookTickers(rec).values()].reduce((a, b) => a + b, 0));
      expect(await metricValue(w.metrics.registry, 'tickwatch_ingestion_dead_letters_total')).toBe(10_000);
      expect(await metricValue(w.metrics.registry, 'tickwatch_ingestion_reconnects_total')).toBe(0);
      expect(server.connectionsAccepted).toBe(1);
    } finally {
      await w.stop('test over');
      await server.close();
    }
  });
});
