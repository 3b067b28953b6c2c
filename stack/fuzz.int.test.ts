// Fuzzing the path a frame takes, for real: 100,000 randomly corrupted copies of recorded Binance frames (every tick
// type), mixed into the recorded stream of the local stand-in, through the ingestion worker (mapping, sequencing,
// producing to Kafka) and the writers (COPY into PostgreSQL). Nothing crashes or reconnects; every frame refused is
// dead-lettered once, with a reason whose code is a known one; every tick produced is stored, and every row is valid.
// A corrupted copy can still be a valid frame: one with a changed id may pass for a real tick (it is not refused, so
// not asserted on), but it cannot make a real one disappear: every recorded (symbol, id) of every tick type is stored.
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgSession } from '../common/db.ts';
import { createKafka } from '../common/kafka.ts';
import { createWriterMetrics } from '../consumer/metrics.ts';
import { startWriters, type WriterSet } from '../consumer/writer.ts';
import { DEAD_LETTER_CODES, deadLetterCode } from '../ingestion/metrics.ts';
import { startIngestion } from '../ingestion/worker.ts';
import { migrate } from '../sql/migrate.ts';
import { BinanceServer, loadRecording, missingRecordings, type Recording } from '../test/binance-server.ts';
import { drained, ingestTestConfig, metricValue, readTopics, waitFor } from '../test/binance-topics.ts';
import { freshDatabase, missing, testLog } from '../test/services.ts';

const skip = (await missing('kafka', 'postgres')) ?? missingRecordings();
const FRAMES = 100_000;

/** mulberry32: the same corruptions on every run, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const JUNK = ['\u0000', '\uFFFD', '"', '\\', '{', '}', ',', ':', '-', '.', 'e', '9', ' ', '\u00e9', '\ud83d\ude00', 'null', 'true', '1e400'];

/** One random corruption of a frame's text: bytes, structure, types or values. */
function corrupt(text: string, rnd: () => number): string {
  const at = Math.floor(rnd() * text.length);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  switch (Math.floor(rnd() * 12)) {
    case 0: // a character replaced
      return text.slice(0, at) + pick(JUNK) + text.slice(at + 1);
    case 1: // a character dropped
      return text.slice(0, at) + text.slice(at + 1);
    case 2: // cut short
      return text.slice(0, at);
    case 3: // junk inserted
      return text.slice(0, at) + pick(JUNK) + text.slice(at);
    case 4: // a value of another type
      return text.replace(/("[a-zA-Z]":)("[^"]*"|-?\d+|true|false)/, `$1${pick(['null', 'true', '"x"', '-1', '1.5', '[]', '{}', '1e400', '9007199254740993'])}`);
    case 5: // a key renamed
      return text.replace(/"([a-zA-Z])":/, `"${pick(['x', 'T', 'E', 'p', 'q', 'u', 'b', 'a'])}":`);
    case 6: // a decimal made negative, empty, exponent or huge
      return text.replace(/"(\d+\.\d+)"/, `"${pick(['-1.0', '', '1e5', '1'.repeat(25), '0.0', ' 1.0'])}"`);
    case 7: // a time far ahead, before 2000, or years before the stream's
      return text.replace(/"([TE])":\d+/, `"$1":${pick([4_070_908_800_000, 946_684_700_000, 1, 99_999_999_999_999, 1_500_000_000_000])}`);
    case 8: // a crossed book (bid above ask), where the frame has both
      return text.replace(/"b":"([^"]+)"(.*)"a":"([^"]+)"/, '"b":"$3"$2"a":"$1"').replace(/"a":"([\d.]+)"/, (_m, a: string) => `"a":"${(Number(a) * 0.9).toFixed(2)}"`);
    case 9: // another stream or symbol
      return text.replace(/"stream":"[^"]+"/, `"stream":"${pick(['xrpusdt@trade', 'btcusdt@depth', 'BTCUSDT@trade', '', 'btcusdt@bookTicker'])}"`);
    case 10: // the data object replaced
      return text.replace(/"data":\{.*\}\}$/, `"data":${pick(['null', '[]', '"x"', '{}', '1'])}}`);
    default: // not JSON at all
      return pick(['', ' ', 'null', '[1]', '{"stream":1}', text.split('').reverse().join('')]);
  }
}

describe.skipIf(skip)(`fuzz: ${FRAMES.toLocaleString('en')} corrupted recorded frames through ingestion, Kafka and the writers`, () => {
  let rec: Recording;
  let server: BinanceServer;
  let db: { url: string; drop: () => Promise<void> };
  let client: pg.Client;
  let writers: WriterSet | undefined;

  beforeAll(async () => {
    rec = await loadRecording({ maxEvents: 50_000, symbols: ['BTCUSDT', 'ETHUSDT'], types: ['trade', 'aggTrade', 'bookTicker'] });
    db = await freshDatabase('fuzz');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await writers?.stop();
    await server?.close();
    await client?.end();
    await db?.drop();
  });

  it('nothing crashes or reconnects; each bad frame is one dead letter with a known code; every stored row is valid', async () => {
    const rnd = prng(20261204);
    let injected = 0;
    // After each event, two corrupted copies of frames already sent.
    server = await BinanceServer.start({
      recording: rec,
      rate: 25_000,
      autoplay: false,
      extraFrames: (i) => {
        if (injected >= FRAMES) return undefined;
        injected += 2;
        return [0, 1].map(() => corrupt(rec.events[Math.floor(rnd() * (i + 1))]!.text, rnd));
      },
    });
    // The watchdog at 2 minutes: the stand-in goes quiet once the recording is sent, which is no fault of the frames.
    const config = await ingestTestConfig(server, { DATABASE_URL: db.url, SYMBOLS: 'BTCUSDT,ETHUSDT', MAX_FRAME_BYTES: '4096', WATCHDOG_SECONDS: '120', REST_WEIGHT_PER_MINUTE: '6000', WRITER_GROUP_PREFIX: `fuzz-${Date.now()}` });
    await migrate(pgSession(client), config, testLog);
    const w = await startIngestion(config, { log: testLog });
    const registry = new Registry();
    writers = await startWriters({ config, log: testLog, kafka: createKafka(config, testLog, 'fuzz-writer'), metrics: createWriterMetrics(registry), families: ['trade', 'aggTrade', 'bookTicker'] });
    try {
      await waitFor(() => server.openConnections === 1, 10_000, 'the connection');
      server.play();
      // Corrupted ids open holes the worker asks REST about, within its weight budget: on a loaded machine that takes a while.
      await drained(w, server, 300_000);
      expect(injected).toBe(FRAMES);

      const t = config.kafka.topics;
      const topics = await readTopics(config, [t.trade, t.aggTrade, t.bookTicker, t.deadLetter]);
      const dead = topics.get(t.deadLetter)!.map((r) => JSON.parse(r.value) as { source: string; reason: string });
      const fromIngestion = dead.filter((d) => d.source === 'binance-spot');
      const m = (name: string) => metricValue(w.metrics.registry, name);
      const produced = ['trade', 'aggTrade', 'bookTicker'].reduce((n, k) => n + topics.get(t[k as 'trade'])!.length, 0);
      console.info(JSON.stringify({ frames: rec.events.length + FRAMES, produced, duplicates: await m('tickwatch_ingestion_duplicates_dropped_total'), ignored: await m('tickwatch_ingestion_messages_ignored_total'), deadLetters: fromIngestion.length }));
      expect(await m('tickwatch_ingestion_dead_letters_total')).toBe(fromIngestion.length);
      const codes = new Map<string, number>();
      for (const d of fromIngestion) codes.set(deadLetterCode(d.reason), (codes.get(deadLetterCode(d.reason)) ?? 0) + 1);
      console.info(`dead letters by code: ${JSON.stringify(Object.fromEntries(codes))}`);
      for (const code of codes.keys()) expect(DEAD_LETTER_CODES).toContain(code);
      expect(codes.get('other'), 'reasons no code names').toBeUndefined();
      expect(fromIngestion.length).toBeGreaterThan(FRAMES * 0.8);
      expect(await m('tickwatch_ingestion_reconnects_total')).toBe(0);
      expect(server.connectionsAccepted).toBe(1);

      // The writers store every produced tick and refuse none: nothing invalid got past ingestion.
      const count = async (sql: string) => Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
      await waitFor(
        async () => (await count('SELECT (SELECT count(*) FROM trades) + (SELECT count(*) FROM agg_trades) + (SELECT count(*) FROM book_tickers) AS n')) === produced,
        120_000,
        'the writers to store every produced tick',
      );
      // No real tick was taken for a repeat of a forged one (a book ticker's update id far ahead, an absurd trade id).
      const idColumn = { trades: 'trade_id', agg_trades: 'agg_id', book_tickers: 'update_id' } as const;
      const tableOf = { trade: 'trades', aggTrade: 'agg_trades', bookTicker: 'book_tickers' } as const;
      for (const [type, table] of Object.entries(tableOf)) {
        const { rows } = await client.query<{ k: string }>(`SELECT symbol || ':' || ${idColumn[table]} AS k FROM ${table}`);
        const stored = new Set(rows.map((r) => r.k));
        const recorded = rec.events.filter((e) => e.type === type);
        const missingIds = recorded.filter((e) => !stored.has(`${e.symbol}:${e.id}`));
        expect(recorded.length, type).toBeGreaterThan(0);
        expect(missingIds.slice(0, 5).map((e) => `${e.symbol}:${e.id}`), `${missingIds.length} recorded ${type} ids not stored`).toEqual([]);
      }
      // Read again now that every tick is stored: a writer's refusal would be among them.
      const deadAfter = (await readTopics(config, [t.deadLetter])).get(t.deadLetter)!.map((r) => JSON.parse(r.value) as { source: string; reason: string });
      expect(deadAfter.filter((d) => d.source === 'writer')).toEqual([]);
      expect(writers.health().ok).toBe(true);
      expect(await count('SELECT count(*) AS n FROM book_tickers WHERE bid_price > ask_price')).toBe(0);
      for (const table of ['trades', 'agg_trades', 'book_tickers']) {
        expect(await count(`SELECT count(*) AS n FROM ${table} WHERE time < '2000-01-01' OR time >= '2100-01-01' OR time > receive_time + interval '1 hour'`), table).toBe(0);
        // The recording is of 2024-08-08/09: a time an hour or more behind its stream is refused.
        expect(await count(`SELECT count(*) AS n FROM ${table} WHERE time < '2024-08-08'`), table).toBe(0);
      }
    } finally {
      await w.stop('test over');
    }
  }, 600_000);
});
