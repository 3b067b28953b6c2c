// The router's Kafka keys: one per exchange, market and symbol (tickKey), whatever it remembers between records.
import { describe, expect, it } from 'vitest';
import { createLogger } from '../common/log.ts';
import { tickKey, type Exchange, type Market, type ProducedRecord } from '../common/records.ts';
import { newTrade } from '../common/tick-schema.ts';
import type { VenueOutput } from './book/output.ts';
import { createIngestMetrics } from './metrics.ts';
import { SYMBOL_KEYS_MAX, VenueRouter, type VenueSession } from './router.ts';

const topics = { trade: 't', aggTrade: 'a', bookTicker: 'b', gap: 'g', deadLetter: 'd' } as never;

describe('VenueRouter', () => {
  it('keys every tick by its own exchange, market and symbol, for symbols that repeat across venues and past its cache bound', () => {
    let next: { exchange: Exchange; market: Market; symbol: string } = { exchange: 'binance', market: 'spot', symbol: 'BTCUSDT' };
    const session: VenueSession = {
      frame: (_text: string, receiveTimeUs: number, out: VenueOutput[]) => {
        out.push({ kind: 'trade', record: newTrade(next.exchange, next.market, next.symbol, receiveTimeUs, 1, '1', '1', true, 1, 1) });
        return 'stream';
      },
      flush: () => {},
      disconnected: () => {},
    };
    const produced: { key: string; record: ProducedRecord }[] = [];
    const router = new VenueRouter({
      session,
      source: 'binance-spot',
      topics,
      booksTopic: 'books',
      sink: { produce: (_topic, key, record) => void produced.push({ key, record }), writable: async () => {} },
      metrics: createIngestMetrics({ defaultMetrics: false }),
      log: createLogger('silent', 'test'),
      deadLetterMaxBytes: 1024,
      refetchBook: () => {},
    });
    const sequence: (typeof next)[] = [];
    for (let i = 0; i < SYMBOL_KEYS_MAX + 50; i++) sequence.push({ exchange: 'binance', market: 'spot', symbol: `S${i % (SYMBOL_KEYS_MAX + 7)}` });
    for (const symbol of ['BTCUSDT', 'ETHUSDT']) {
      for (const [exchange, market] of [['binance', 'spot'], ['binance', 'usdm'], ['coinbase', 'spot'], ['binance', 'spot']] as const) sequence.push({ exchange, market, symbol });
    }
    for (const s of sequence) {
      next = s;
      router.frame('{}', 1);
    }
    expect(produced).toHaveLength(sequence.length);
    for (const p of produced) expect(p.key).toBe(tickKey(p.record as { exchange: Exchange; market: Market; symbol: string }));
    expect(produced.at(-2)!.key).toBe('coinbase:spot:ETHUSDT');
    expect(produced.at(-1)!.key).toBe('binance:spot:ETHUSDT');
  });

  it('dead-letters a frame the session throws on, sends what it had output before, and goes on with the next frames', async () => {
    const session: VenueSession = {
      frame: (text: string, receiveTimeUs: number, out: VenueOutput[]) => {
        out.push({ kind: 'trade', record: newTrade('binance', 'spot', 'BTCUSDT', receiveTimeUs, receiveTimeUs, '1', '1', true, 1, 1) });
        if (text === 'boom') throw new Error('a bug');
        return 'btcusdt@trade';
      },
      flush: () => {},
      disconnected: () => {},
    };
    const produced: { topic: string; key: string; record: ProducedRecord }[] = [];
    const metrics = createIngestMetrics({ defaultMetrics: false });
    const router = new VenueRouter({
      session,
      source: 'binance-spot',
      topics,
      booksTopic: 'books',
      sink: { produce: (topic, key, record) => void produced.push({ topic, key, record }), writable: async () => {} },
      metrics,
      log: createLogger('silent', 'test'),
      deadLetterMaxBytes: 1024,
      refetchBook: () => {},
    });
    router.frame('{"ok":1}', 1);
    router.frame('boom', 2);
    router.frame('{"ok":3}', 3);
    expect(produced.map((p) => p.topic)).toEqual(['t', 't', 'd', 't']);
    expect(produced.filter((p) => p.topic === 't').map((p) => (p.record as { tradeId: number }).tradeId)).toEqual([1, 2, 3]);
    expect(produced[2]!.record).toMatchObject({ type: 'deadLetter', source: 'binance-spot', stream: null, raw: 'boom', reason: 'internal error: a bug', receiveTimeUs: 2 });
    expect(produced[2]!.key).toBe('binance-spot');
    const text = await metrics.registry.metrics();
    expect(text).toContain('tickwatch_ingestion_dead_letters_total{reason="internal-error"} 1');
    expect(text).toContain('tickwatch_ingestion_messages_received_total{stream="btcusdt@trade"} 2');
  });
});
