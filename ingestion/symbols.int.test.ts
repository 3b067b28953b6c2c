// Symbols by rule while running: the stand-in's instrument list changes (one symbol listed, one delisted) and the
// worker follows by SUBSCRIBE / UNSUBSCRIBE on its open connection, without a reconnect: the new symbol's trades
// arrive from the moment it was subscribed, the delisted one's stop at the moment it was unsubscribed. And 703 symbols
// by rule: spread over connections whose URLs stay within what Binance takes (the stand-in refuses longer ones).
import { describe, expect, it } from 'vitest';
import { BinanceServer, expectedIds, loadRecording, missingRecordings } from '../test/binance-server.ts';
import { drained, idsBySymbol, ingestTestConfig, metricValue, readTopics, ticksOf, waitFor } from '../test/binance-topics.ts';
import { missing, testLog } from '../test/services.ts';
import { startIngestion } from './worker.ts';

const skip = (await missing('kafka')) ?? missingRecordings();

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.skipIf(skip)('ingestion: symbols by rule', () => {
  it('subscribes a listed symbol and unsubscribes a delisted one on the open connection', async () => {
    const rec = await loadRecording({ maxEvents: 24_000 });
    const server = await BinanceServer.start({ recording: rec, rate: 2_000, autoplay: false, pingIntervalMs: 500 });
    server.setInstrument('BNBUSDT', 'PRE_TRADING');
    server.setInstrument('BTCBUSD', 'TRADING', 'BUSD');
    const config = await ingestTestConfig(server, { SYMBOLS: 'rule:quote=USDT', SYMBOLS_REFRESH_SECONDS: '1' });
    const worker = await startIngestion(config, { log: testLog });
    const metric = (name: string, labels: Record<string, string> = {}) => metricValue(worker.metrics.registry, name, labels);
    try {
      await waitFor(() => server.openConnections === 1, 10_000, 'the connection');
      expect(server.subscribedStreams()).toEqual(new Set(['btcusdt@trade', 'btcusdt@aggTrade', 'btcusdt@bookTicker', 'ethusdt@trade', 'ethusdt@aggTrade', 'ethusdt@bookTicker']));
      server.play();
      await waitFor(() => server.published >= 6_000, 30_000, 'the stream to run');
      server.setInstrument('BNBUSDT', 'TRADING');
      server.setInstrument('ETHUSDT', 'BREAK');
      await waitFor(() => server.subscriptionRequests.length >= 2, 15_000, 'the subscription changes');
      await drained(worker, server);
      await waitFor(() => worker.feeds.every((f) => f.unansweredSubscriptions === 0), 5_000, 'the replies');

      expect(server.subscribedStreams()).toEqual(new Set(['btcusdt@trade', 'btcusdt@aggTrade', 'btcusdt@bookTicker', 'bnbusdt@trade', 'bnbusdt@aggTrade', 'bnbusdt@bookTicker']));
      expect(server.connectionsAccepted).toBe(1);
      expect(server.messageLimitClosed).toBe(0);
      const sub = server.subscriptionRequests.find((r) => r.method === 'SUBSCRIBE')!;
      const unsub = server.subscriptionRequests.find((r) => r.method === 'UNSUBSCRIBE')!;
      expect([...sub.params].sort()).toEqual(['bnbusdt@aggTrade', 'bnbusdt@bookTicker', 'bnbusdt@trade']);
      expect([...unsub.params].sort()).toEqual(['ethusdt@aggTrade', 'ethusdt@bookTicker', 'ethusdt@trade']);
      expect(server.subscriptionRequests).toHaveLength(2);

      const t = config.kafka.topics;
      const topics = await readTopics(config, [t.trade, t.aggTrade]);
      const trades = idsBySymbol(ticksOf(topics.get(t.trade)!));
      const aggTrades = idsBySymbol(ticksOf(topics.get(t.aggTrade)!));
      const all = { trade: expectedIds(rec, 'trade'), aggTrade: expectedIds(rec, 'aggTrade') };
      for (const [type, got] of [['trade', trades], ['aggTrade', aggTrades]] as const) {
        // Never delisted: every id.
        expect(got.get('BTCUSDT')).toEqual(all[type].get('BTCUSDT'));
        // Listed: every id published after the subscription took effect, and only those.
        const ids = all[type].get('BNBUSDT')!;
        const after = sub.lastIds.get(`${type}:BNBUSDT`) ?? -1;
        expect(ids.at(-1)!).toBeGreaterThan(after);
        expect(got.get('BNBUSDT')).toEqual(range(Math.max(after + 1, ids[0]!), ids.at(-1)!));
        // Delisted: every id up to the unsubscription, none after.
        const eth = all[type].get('ETHUSDT')!;
        const until = unsub.lastIds.get(`${type}:ETHUSDT`)!;
        expect(eth.at(-1)!).toBeGreaterThan(until);
        expect(got.get('ETHUSDT')).toEqual(range(eth[0]!, until));
      }

      expect(await metric('tickwatch_ingestion_symbol_changes_total', { change: 'listed' })).toBe(1);
      expect(await metric('tickwatch_ingestion_symbol_changes_total', { change: 'delisted' })).toBe(1);
      expect(await metric('tickwatch_ingestion_subscription_streams_total', { method: 'SUBSCRIBE', outcome: 'acknowledged' })).toBe(3);
      expect(await metric('tickwatch_ingestion_subscription_streams_total', { method: 'UNSUBSCRIBE', outcome: 'acknowledged' })).toBe(3);
      expect(await metric('tickwatch_ingestion_symbols')).toBe(2);
      expect(server.exchangeInfoRequests).toBeGreaterThan(2);
    } finally {
      await worker.stop('test over');
      await server.close();
    }
  });

  it('spreads hundreds of symbols over connections whose URLs Binance takes, and carries every recorded trade', async () => {
    const rec = await loadRecording({ maxEvents: 6_000 });
    const server = await BinanceServer.start({ recording: rec, rate: 3_000, autoplay: false, pingIntervalMs: 500 });
    for (let i = 0; i < 700; i++) server.setInstrument(`SYMBOL${i}USDT`, 'TRADING');
    const config = await ingestTestConfig(server, { SYMBOLS: 'rule:quote=USDT' });
    const worker = await startIngestion(config, { log: testLog });
    try {
      await waitFor(() => worker.feeds.length > 0 && server.openConnections === worker.feeds.length, 20_000, 'every connection');
      // 703 symbols x 3 stream types: some 48,000 characters of stream names, at most 8,004 a URL.
      expect(worker.feeds.length).toBeGreaterThanOrEqual(6);
      expect(server.subscribedStreams().size).toBe(703 * 3);
      expect(server.urlsRefused).toBe(0);
      server.play();
      await drained(worker, server);
      const t = config.kafka.topics;
      const topics = await readTopics(config, [t.trade]);
      expect(idsBySymbol(ticksOf(topics.get(t.trade)!))).toEqual(expectedIds(rec, 'trade'));
    } finally {
      await worker.stop('test over');
      await server.close();
    }
  });
});
