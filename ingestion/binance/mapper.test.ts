import { describe, expect, it } from 'vitest';
import { decodeTick, encodeRecord } from '../../common/records.ts';
import { fieldCases, SAMPLE_TICKS } from '../../common/tick-schema.fixture.ts';
import { TICK_TYPES } from '../../common/tick-schema.ts';
import { deadLetterCode } from '../metrics.ts';
import { createBinanceMapper, mapRestAggTrade, mapRestTrade, streamNames, WS_KEYS } from './mapper.ts';

const spot = createBinanceMapper({ market: 'spot', maxFrameBytes: 4096, streamTypes: ['trade', 'aggTrade', 'bookTicker'] });
const usdm = createBinanceMapper({ market: 'usdm', maxFrameBytes: 4096, streamTypes: ['trade', 'aggTrade', 'bookTicker'] });
const RT = 1723161254087896;

// Real frames from ../shared/data (binance-spot, binance-usdm) and a spot aggTrade in Binance's documented form.
const TRADE =
  '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":true,"M":true}}';
const BOOK = '{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}';
const AGG =
  '{"stream":"ethusdt@aggTrade","data":{"e":"aggTrade","E":1723161255343,"s":"ETHUSDT","a":1500,"p":"2683.81000000","q":"1.50000000","f":100,"l":102,"T":1723161255342,"m":false,"M":true}}';
const FUT_TRADE =
  '{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161256322,"T":1723161256322,"s":"BTCUSDT","t":5266583935,"p":"61800.30","q":"0.006","X":"MARKET","m":false}}';
const FUT_BOOK =
  '{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256313}}';

describe('binance mapper', () => {
  it('maps a spot trade with exact decimals, and the record survives decodeTick', () => {
    const r = spot.map(TRADE, RT);
    expect(r).toEqual({
      kind: 'tick',
      stream: 'btcusdt@trade',
      tick: {
        type: 'trade',
        exchange: 'binance',
        market: 'spot',
        symbol: 'BTCUSDT',
        receiveTimeUs: RT,
        tradeId: 3735683259,
        price: '61837.63000000',
        quantity: '0.02000000',
        buyerIsMaker: true,
        side: 'sell',
        exchangeTimeMs: 1723161255342,
        eventTimeMs: 1723161255343,
      },
    });
    // The schema fixture's sample trade is this frame's trade, received at RT.
    expect(r).toEqual({ kind: 'tick', stream: 'btcusdt@trade', tick: SAMPLE_TICKS.trade });
    if (r.kind !== 'tick') throw new Error('unreachable');
    expect(decodeTick(encodeRecord(r.tick), '1')).toEqual(r.tick);
  });

  it('maps aggTrade and bookTicker (spot: no exchange time), usdm trade and bookTicker', () => {
    for (const [m, text] of [
      [spot, AGG],
      [spot, BOOK],
      [usdm, FUT_TRADE],
      [usdm, FUT_BOOK],
    ] as const) {
      const r = m.map(text, RT);
      expect(r.kind, text).toBe('tick');
      if (r.kind === 'tick') expect(decodeTick(encodeRecord(r.tick), '1')).toEqual(r.tick);
    }
    const b = spot.map(BOOK, RT);
    expect(b.kind === 'tick' && b.tick.type === 'bookTicker' && b.tick.exchangeTimeMs).toBe(null);
    const a = spot.map(AGG, RT);
    expect(a.kind === 'tick' && a.tick.type === 'aggTrade' && [a.tick.aggId, a.tick.firstTradeId, a.tick.lastTradeId, a.tick.side]).toEqual([
      1500,
      100,
      102,
      'buy',
    ]);
  });

  const bad: [string, string, RegExp][] = [
    ['not JSON', '{"stream":"btcusdt@trade","data":{', /not JSON/],
    ['array', '[1,2]', /not a JSON object/],
    ['no stream', '{"data":{}}', /missing field stream/],
    ['no data', '{"stream":"btcusdt@trade"}', /data/],
    ['missing t', TRADE.replace('"t":3735683259,', ''), /missing field t/],
    ['string id', TRADE.replace('"t":3735683259', '"t":"3735683259"'), /field t is not/],
    ['number price', TRADE.replace('"p":"61837.63000000"', '"p":61837.63'), /field p is not a decimal/],
    ['zero price', TRADE.replace('"p":"61837.63000000"', '"p":"0.00000000"'), /field p is not positive/],
    ['negative price', TRADE.replace('"p":"61837.63000000"', '"p":"-1.0"'), /field p/],
    ['negative qty', TRADE.replace('"q":"0.02000000"', '"q":"-0.02"'), /field q/],
    ['NaN price', TRADE.replace('"p":"61837.63000000"', '"p":"NaN"'), /field p/],
    ['Infinity qty', TRADE.replace('"q":"0.02000000"', '"q":"Infinity"'), /field q/],
    ['exponent price', TRADE.replace('"p":"61837.63000000"', '"p":"6.1e4"'), /field p/],
    ['huge time', TRADE.replace('"T":1723161255342', '"T":1e400'), /field T/],
    ['bool m', TRADE.replace('"m":true', '"m":"true"'), /field m/],
    ['wrong symbol', TRADE.replace('"s":"BTCUSDT"', '"s":"ETHUSDT"'), /does not match stream symbol/],
    ['wrong event', TRADE.replace('"e":"trade"', '"e":"aggTrade"'), /does not match stream/],
    ['agg f>l', AGG.replace('"f":100', '"f":200'), /exceeds/],
    ['book ask zero', BOOK.replace('"a":"61837.64000000"', '"a":"0"'), /field a is not positive/],
    ['oversized', `{"stream":"btcusdt@trade","data":{"pad":"${'x'.repeat(5000)}"}}`, /exceeds 4096 bytes/],
  ];
  it.each(bad)('rejects %s with a reason', (_name, text, reason) => {
    const r = spot.map(text, RT);
    expect(r.kind).toBe('rejected');
    if (r.kind === 'rejected') expect(r.reason).toMatch(reason);
  });

  it('usdm book tickers must carry times', () => {
    const r = usdm.map(FUT_BOOK.replace(',"T":1723161256313', ''), RT);
    expect(r.kind).toBe('rejected');
  });

  it('recognises serverShutdown in its documented and combined forms, ignores replies and unwanted streams', () => {
    expect(spot.map('{"event":{"e":"serverShutdown","E":1770123456789}}', RT)).toEqual({ kind: 'serverShutdown', eventTimeMs: 1770123456789 });
    expect(spot.map('{"stream":"x","data":{"e":"serverShutdown"}}', RT).kind).toBe('serverShutdown');
    expect(spot.map('{"result":null,"id":1}', RT).kind).toBe('ignored');
    expect(spot.map('{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate"}}', RT).kind).toBe('ignored');
    const onlyEth = createBinanceMapper({ market: 'spot', maxFrameBytes: 4096, streamTypes: ['trade'], symbols: ['ETHUSDT'] });
    expect(onlyEth.map(TRADE, RT).kind).toBe('ignored');
    expect(onlyEth.map(BOOK, RT).kind).toBe('ignored');
  });

  it('maps REST backfill rows', () => {
    const t = mapRestTrade('spot', 'BTCUSDT', { id: 7, price: '1.5', qty: '2', quoteQty: '3', time: 1723161255342, isBuyerMaker: false, isBestMatch: true }, RT);
    expect(typeof t !== 'string' && decodeTick(encodeRecord(t), '1')).toMatchObject({ tradeId: 7, side: 'buy', price: '1.5' });
    const a = mapRestAggTrade('spot', 'BTCUSDT', { a: 9, p: '1.5', q: '2', f: 7, l: 8, T: 1723161255342, m: true, M: true }, RT);
    expect(typeof a !== 'string' && decodeTick(encodeRecord(a), '1')).toMatchObject({ aggId: 9, side: 'sell' });
    expect(mapRestTrade('spot', 'BTCUSDT', { id: 7 }, RT)).toMatch(/missing field price/);
  });

  it('rejects a REST aggTrade row whose first trade id exceeds its last, as the WebSocket mapping does', () => {
    const row = { a: 9, p: '1.5', q: '2', f: 8, l: 7, T: 1723161255342, m: true, M: true };
    expect(mapRestAggTrade('spot', 'BTCUSDT', row, RT)).toBe('first trade id f exceeds last trade id l');
    expect(mapRestAggTrade('spot', 'BTCUSDT', { ...row, l: 8 }, RT)).toMatchObject({ firstTradeId: 8, lastTradeId: 8 });
  });

  it('refuses a crossed book ticker and a time an hour ahead of its receipt, each with a reason and its code', () => {
    const crossed = spot.map(BOOK.replace('"b":"61837.63000000"', '"b":"61837.65000000"'), RT);
    expect(crossed).toEqual({ kind: 'rejected', stream: 'btcusdt@bookTicker', reason: 'crossed book ticker: bid 61837.65000000 is above ask 61837.64000000' });
    expect(deadLetterCode((crossed as { reason: string }).reason)).toBe('crossed-book');
    // A locked book (bid = ask) is a quote, not an error.
    expect(spot.map(BOOK.replace('"b":"61837.63000000"', '"b":"61837.6400"'), RT)).toMatchObject({ kind: 'tick' });
    // A trade time 2 hours after its receipt (a hostile or broken frame; a year such as 2099 alike) is no trade.
    const ahead = spot.map(TRADE.replace('"T":1723161255342', `"T":${1723161255342 + 7_200_000}`), RT);
    expect(ahead).toMatchObject({ kind: 'rejected', reason: 'exchange or event time is not within an hour of the receive time' });
    expect(deadLetterCode((ahead as { reason: string }).reason)).toBe('bad-field');
    expect(spot.map(TRADE.replace('"T":1723161255342', '"T":4070908800000'), RT)).toMatchObject({ kind: 'rejected' });
    // Backfilled rows are old, and received now: only the future is refused.
    const old = { id: 7, price: '1.5', qty: '2', quoteQty: '3', time: 1600000000000, isBuyerMaker: false, isBestMatch: true };
    expect(mapRestTrade('spot', 'BTCUSDT', old, RT)).toMatchObject({ tradeId: 7 });
    expect(mapRestTrade('spot', 'BTCUSDT', { ...old, time: 4070908800000 }, RT)).toBe('exchange or event time is not within an hour of the receive time');
  });

  it('names streams in lower case', () => {
    expect(streamNames(['BTCUSDT'], ['trade', 'bookTicker'])).toEqual(['btcusdt@trade', 'btcusdt@bookTicker']);
  });
});

describe('binance mapper against the tick schema', () => {
  const FRAMES = { trade: TRADE, aggTrade: AGG, bookTicker: BOOK } as const;

  for (const type of TICK_TYPES) {
    it(`checks every ${type} key by the rule of the schema field it fills`, () => {
      const frame = JSON.parse(FRAMES[type]) as { stream: string; data: Record<string, unknown> };
      const sample = SAMPLE_TICKS[type] as unknown as Record<string, unknown>;
      const keys = Object.entries(WS_KEYS[type]);
      // The frame's payload carrying the sample's values; a venue leaves a null field out.
      const data: Record<string, unknown> = { ...frame.data };
      for (const [key, name] of keys) {
        if (sample[name] === null) delete data[key];
        else data[key] = sample[name];
      }
      const mapWith = (key: string, value: unknown) => spot.map(JSON.stringify({ stream: frame.stream, data: { ...data, [key]: value } }), RT);
      for (const { field, value, expect: want } of fieldCases(type)) {
        const key = keys.find(([, name]) => name === field.name)?.[0];
        if (key === undefined) continue; // identity, receive time and side come from the stream, the clock and the flag
        const what = `${type} ${key} (${field.name}) = ${JSON.stringify(value)}`;
        const r = mapWith(key, field.nullable && value === null ? undefined : value);
        if (want === 'invalid' && !(field.nullable && value === undefined)) {
          expect(r.kind, what).toBe('rejected');
          continue;
        }
        expect(r.kind, what).toBe('tick');
        if (r.kind === 'tick') expect((r.tick as unknown as Record<string, unknown>)[field.name], what).toEqual(value ?? null);
      }
    });
  }
});
