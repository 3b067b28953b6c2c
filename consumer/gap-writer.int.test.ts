// The gap writer against real Kafka and PostgreSQL: gap events from the gaps topic land in gap_events once each (a
// re-delivered event is ignored), where the data-quality rule and the Risk Monitor read them; a poison event is
// dead-lettered and the partition keeps flowing.
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeRecord, recordHeaders, tickKey, type GapEvent } from '../common/records.ts';
import { missing, testLog } from '../test/services.ts';
import { createWriterMetrics } from './metrics.ts';
import { createScenario, readDeadLetters, type Scenario } from './scenario.ts';
import { startWriters, type WriterSet } from './writer.ts';

const skip = await missing('kafka', 'postgres');

const gap = (over: Partial<GapEvent>): GapEvent => ({
  type: 'gap',
  exchange: 'binance',
  market: 'spot',
  symbol: 'BTCUSDT',
  stream: 'bookTicker',
  fromId: null,
  toId: null,
  fromTimeMs: Date.UTC(2024, 7, 8, 23, 57, 1),
  toTimeMs: Date.UTC(2024, 7, 8, 23, 57, 4, 500),
  reason: 'reconnect: book tickers between the connections are lost',
  detectedAtUs: Date.UTC(2024, 7, 8, 23, 57, 5) * 1000 + 123,
  ...over,
});

describe.skipIf(skip)('gap writer (real Kafka, real PostgreSQL)', () => {
  let s: Scenario | undefined;
  let writers: WriterSet | undefined;
  afterAll(async () => {
    await writers?.stop().catch(() => {});
    await s?.close().catch(() => {});
  });

  it('stores each gap event once and dead-letters a malformed one', async () => {
    s = await createScenario('gaps');
    const registry = new Registry();
    writers = await startWriters({ config: s.config, log: testLog, kafka: s.kafka, metrics: createWriterMetrics(registry), families: ['gap'] });
    const events = [
      gap({}),
      gap({ symbol: 'ETHUSDT', stream: 'trade', fromId: 1_500_000_001, toId: 1_500_000_040, reason: 'backfill gave up: ids lost' }),
      gap({ exchange: 'coinbase', symbol: 'BTC-USD', stream: 'book', reason: 'crossed book: resubscribed' }),
    ];
    const message = (g: GapEvent) => ({ key: tickKey(g), value: encodeRecord(g), headers: recordHeaders('gap') });
    const topic = s.config.kafka.topics.gap;
    await s.produceRaw(topic, [
      ...events.map(message),
      message(events[0]!), // re-delivered: a duplicate, ignored
      { key: 'binance:spot:BTCUSDT', value: Buffer.from(JSON.stringify({ ...events[0], fromTimeMs: 'yesterday' })), headers: recordHeaders('gap') },
      message(gap({ symbol: 'BNBUSDT' })), // after the poison, in the same partition: still written
    ]);
    await s.waitUntilWritten(60_000);

    const rows = await s.query<{ exchange: string; symbol: string; stream: string; from_id: string | null; seconds: string; detected_at: Date }>(
      `SELECT exchange, symbol, stream, from_id::text, extract(epoch FROM to_time - from_time)::text AS seconds, detected_at
         FROM gap_events`,
    );
    expect(rows.map((r) => `${r.exchange}/${r.symbol}/${r.stream}/${r.from_id}/${r.seconds}`).sort()).toEqual([
      'binance/BNBUSDT/bookTicker/null/3.500000',
      'binance/BTCUSDT/bookTicker/null/3.500000',
      'binance/ETHUSDT/trade/1500000001/3.500000',
      'coinbase/BTC-USD/book/null/3.500000',
    ]);
    const deadLetters = (await registry.getSingleMetric('tickwatch_writer_dead_letters_total')!.get()).values.reduce((n, v) => n + v.value, 0);
    expect(deadLetters).toBe(1);
  });

  it('a record the database refuses (a rule the decoder cannot know) is dead-lettered with its offset; the batch around it is stored', async () => {
    await writers?.stop();
    await s?.close();
    s = await createScenario('gaps-refused', { env: { KAFKA_PARTITIONS: '1' } });
    const registry = new Registry();
    writers = await startWriters({ config: s.config, log: testLog, kafka: s.kafka, metrics: createWriterMetrics(registry), families: ['gap'] });
    const message = (g: GapEvent) => ({ key: tickKey(g), value: encodeRecord(g), headers: recordHeaders('gap') });
    // Valid JSON and a valid record, refused by a constraint only the database knows (added for this test); a reason
    // with a NUL, which no text column holds, is refused by the decoder before it reaches the database.
    // Two of them: a check violation (23514) and a data exception (22P02, a cast the check makes fail for one symbol).
    await s.query(`ALTER TABLE gap_events ADD CONSTRAINT no_refused CHECK (symbol <> 'REFUSEDUSDT')`);
    await s.query(`ALTER TABLE gap_events ADD CONSTRAINT no_cast CHECK ((CASE WHEN symbol = 'CASTUSDT' THEN 'x' ELSE '1' END)::int > 0)`);
    const events = [gap({ symbol: 'AAAUSDT' }), gap({ symbol: 'REFUSEDUSDT' }), gap({ symbol: 'BBBUSDT' }), gap({ symbol: 'NULUSDT', reason: 'bad\u0000reason' }), gap({ symbol: 'CASTUSDT' }), gap({ symbol: 'CCCUSDT' })];
    await s.produceRaw(s.config.kafka.topics.gap, events.map(message));
    await s.waitUntilWritten(60_000);

    const rows = await s.query<{ symbol: string }>('SELECT symbol FROM gap_events ORDER BY symbol');
    expect(rows.map((r) => r.symbol)).toEqual(['AAAUSDT', 'BBBUSDT', 'CCCUSDT']);
    const letters = (await readDeadLetters(s, 3)).sort((a, b) => Number(a.offset) - Number(b.offset));
    expect(letters).toEqual([
      expect.objectContaining({ source: 'writer', partition: 0, offset: '1', reason: expect.stringMatching(/^refused by the database \(23514/) }),
      expect.objectContaining({ source: 'writer', partition: 0, offset: '3', reason: expect.stringMatching(/without NUL/) }),
      expect.objectContaining({ source: 'writer', partition: 0, offset: '4', reason: expect.stringMatching(/^refused by the database \(22/) }),
    ]);
    expect(writers.health().ok).toBe(true);
  });
});
