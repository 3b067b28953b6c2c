// The writers against real Kafka and PostgreSQL, in process: every recorded tick arrives exactly once with exact
// decimals (ticks produced twice included), and poison records are dead-lettered without stopping their partition.
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordHeaders, type Trade } from '../common/records.ts';
import { capturesMissing, loadCaptureTicks, mixedTicks } from '../test/capture-ticks.ts';
import { missing, testLog } from '../test/services.ts';
import { createWriterMetrics } from './metrics.ts';
import { compareRows, createScenario, readDeadLetters, type Scenario } from './scenario.ts';
import { startWriters, type WriterSet } from './writer.ts';

const skip = (await missing('kafka', 'postgres')) ?? capturesMissing();

describe.skipIf(skip)('tick writers (real Kafka, real PostgreSQL)', () => {
  describe('200,000 mixed recorded records', () => {
    let s: Scenario;
    let writers: WriterSet;
    let registry: Registry;
    beforeAll(async () => {
      s = await createScenario('mixed');
      registry = new Registry();
      writers = await startWriters({ config: s.config, log: testLog, kafka: s.kafka, metrics: createWriterMetrics(registry) });
    });
    afterAll(async () => {
      await writers?.stop();
      await s?.close();
    });

    it('stores exactly the distinct produced ticks, decimals exact, ticks produced twice stored once', async () => {
      const ticks = mixedTicks(200_000);
      const t0 = Date.now();
      await s.produce(ticks);
      // A re-publication like the one after a reconnect: 2,000 ticks produced a second time, later in the stream.
      await s.produce(ticks.slice(50_000, 52_000));
      await s.waitUntilWritten(120_000);
      const elapsed = Date.now() - t0;

      const cmp = compareRows(await s.readRows(), ticks);
      expect(cmp).toMatchObject({ expected: 200_000, actual: 200_000, missing: 0, unexpected: 0 });
      const counts = await s.query<{ t: string; n: string }>(
        `SELECT 'trades' t, count(*)::text n FROM trades UNION ALL SELECT 'agg_trades', count(*)::text FROM agg_trades
         UNION ALL SELECT 'book_tickers', count(*)::text FROM book_tickers`,
      );
      const byType = { trade: 0, aggTrade: 0, bookTicker: 0 };
      for (const t of ticks) byType[t.type]++;
      expect(Object.fromEntries(counts.map((c) => [c.t, Number(c.n)]))).toEqual({
        trades: byType.trade,
        agg_trades: byType.aggTrade,
        book_tickers: byType.bookTicker,
      });
      const text = await registry.metrics();
      expect(text).toMatch(/tickwatch_writer_duplicates_skipped_total\{table="\w+"\} [1-9]/);
      expect(text).toMatch(/tickwatch_writer_commit_latency_seconds_count\{table="trades",since="receive"\} [1-9]/);
      testLog.info({ elapsed, perSecond: Math.round(202_000 / (elapsed / 1000)) }, '200k records produced and written');
    });
  });

  describe('poison records', () => {
    let s: Scenario;
    let writers: WriterSet;
    beforeAll(async () => {
      // Small batches, so poison records sit in the middle, at the start and at the end of batches.
      s = await createScenario('poison', { env: { BATCH_SIZE: '4', KAFKA_PARTITIONS: '1' } });
      writers = await startWriters({
        config: s.config,
        log: testLog,
        kafka: s.kafka,
        metrics: createWriterMetrics(new Registry()),
        families: ['trade'],
      });
    });
    afterAll(async () => {
      await writers?.stop();
      await s?.close();
    });

    it('sends them to the dead-letter topic with partition, offset and reason, and the partition keeps flowing', async () => {
      const good = loadCaptureTicks().trades.slice(0, 30);
      const topic = s.config.kafka.topics.trade;
      const headers = recordHeaders('trade');
      const goodMsg = (t: Trade) => ({ key: 'k', value: JSON.stringify(t), headers });
      const bad = [
        { key: 'k', value: 'not json {', headers },
        { key: 'k', value: JSON.stringify(good[0]), headers: { ...headers, 'schema-version': '99' } },
        { key: 'k', value: JSON.stringify({ ...good[1], price: '-1' }), headers },
        { key: 'k', value: JSON.stringify({ ...loadCaptureTicks().bookTickers[0] }), headers: recordHeaders('bookTicker') },
        { key: 'k', value: JSON.stringify({ ...good[2], exchangeTimeMs: 1 }), headers },
        { key: 'k', value: null, headers },
      ];
      // good, bad, good, ... with two bad records in a row and a bad one last.
      const messages = [];
      let g = 0;
      for (const b of bad) {
        messages.push(goodMsg(good[g++]!), goodMsg(good[g++]!), b);
      }
      messages.push(bad[0]!);
      while (g < good.length) messages.push(goodMsg(good[g++]!));
      messages.push({ ...bad[2]! });
      await s.produceRaw(topic, messages);
      await s.waitUntilWritten(60_000);

      expect(compareRows(await s.readRows(), good)).toMatchObject({ expected: 30, actual: 30, missing: 0, unexpected: 0 });

      const letters = await readDeadLetters(s, 8);
      expect(letters).toHaveLength(8);
      const expectedOffsets = messages.flatMap((m, i) => (good.some((t) => JSON.stringify(t) === m.value) && m.headers === headers ? [] : [String(i)]));
      expect(letters.map((l) => l.offset).sort((a, b) => Number(a) - Number(b))).toEqual(expectedOffsets);
      for (const l of letters) expect(l).toMatchObject({ type: 'deadLetter', source: 'writer', topic, partition: 0 });
      const reasons = letters.map((l) => l.reason).join('\n');
      expect(reasons).toMatch(/not JSON/);
      expect(reasons).toMatch(/schema version 99/);
      expect(reasons).toMatch(/price/);
      expect(reasons).toMatch(/bookTicker record on the trade topic/);
      expect(reasons).toMatch(/outside 2000\.\.2100/);
      expect(reasons).toMatch(/empty record value/);
    });
  });
});
