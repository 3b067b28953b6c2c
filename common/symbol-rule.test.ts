import { describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from './config.ts';
import { parseSymbolRule, ruleMatches, selectSymbols, type Instrument, type SymbolRule } from './symbol-rule.ts';

const rule = (text: string): SymbolRule => {
  const r = parseSymbolRule(text);
  if (typeof r === 'string') throw new Error(r);
  return r;
};
const inst = (symbol: string, baseAsset: string, quoteAsset: string, status = 'TRADING'): Instrument => ({ symbol, baseAsset, quoteAsset, status });

const LIST = [
  inst('BTCUSDT', 'BTC', 'USDT'),
  inst('ETHUSDT', 'ETH', 'USDT'),
  inst('LUNAUSDT', 'LUNA', 'USDT', 'BREAK'),
  inst('ETHBTC', 'ETH', 'BTC'),
  inst('BTCFDUSD', 'BTC', 'FDUSD'),
  inst('USDCUSDT', 'USDC', 'USDT'),
];

describe('parseSymbolRule', () => {
  it('reads quote, base, status, exclude and include, folding case', () => {
    expect(rule('rule:quote=USDT')).toMatchObject({ quote: ['USDT'], base: undefined, status: ['TRADING'], exclude: [], include: [] });
    expect(rule(' RULE: quote = usdt|fdusd ; base=btc ; status=TRADING|BREAK; exclude=x1;include=ETHBTC')).toMatchObject({
      quote: ['USDT', 'FDUSD'],
      base: ['BTC'],
      status: ['TRADING', 'BREAK'],
      exclude: ['X1'],
      include: ['ETHBTC'],
    });
  });

  it('names the problem of a bad rule', () => {
    expect(parseSymbolRule('rule:')).toMatch(/empty/);
    expect(parseSymbolRule('rule:quote')).toMatch(/key=VALUE/);
    expect(parseSymbolRule('rule:quote=USDT;;')).toMatch(/empty clause/);
    expect(parseSymbolRule('rule:colour=red')).toMatch(/unknown key "colour"/);
    expect(parseSymbolRule('rule:quote=USDT;quote=BTC')).toMatch(/twice/);
    expect(parseSymbolRule('rule:quote=US-DT')).toMatch(/"US-DT"/);
    expect(parseSymbolRule('rule:quote=')).toMatch(/""/);
    expect(parseSymbolRule('rule:status=TRADING')).toMatch(/quote= or base=/);
    expect(parseSymbolRule('quote=USDT')).toMatch(/starts with rule:/);
  });
});

describe('ruleMatches / selectSymbols', () => {
  it('takes TRADING symbols of the quote asset by default', () => {
    expect(selectSymbols(rule('rule:quote=USDT'), LIST)).toEqual(['BTCUSDT', 'ETHUSDT', 'USDCUSDT']);
  });
  it('combines clauses: base and quote, exclude, include, status', () => {
    expect(selectSymbols(rule('rule:base=BTC'), LIST)).toEqual(['BTCFDUSD', 'BTCUSDT']);
    expect(selectSymbols(rule('rule:quote=USDT;exclude=USDCUSDT;include=ETHBTC'), LIST)).toEqual(['BTCUSDT', 'ETHBTC', 'ETHUSDT']);
    expect(selectSymbols(rule('rule:quote=USDT;status=BREAK'), LIST)).toEqual(['LUNAUSDT']);
    // include does not bring back a symbol that is not trading.
    expect(ruleMatches(rule('rule:quote=BTC;include=LUNAUSDT'), LIST[2]!)).toBe(false);
  });
});

describe('SYMBOLS and SHARD in the configuration', () => {
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (e) {
      return (e as ConfigError).problems.map((p) => `${p.variable}: ${p.message}`);
    }
  };
  it('takes a list or a rule', () => {
    expect(loadConfig({ SYMBOLS: 'btcusdt,ethusdt' }).source).toMatchObject({ symbols: ['BTCUSDT', 'ETHUSDT'], symbolRule: undefined });
    const c = loadConfig({ SYMBOLS: 'rule:quote=USDT', SYMBOLS_REFRESH_SECONDS: '60', SHARD: '1/3' });
    expect(c.source.symbols).toEqual([]);
    expect(c.source.symbolRule).toMatchObject({ quote: ['USDT'] });
    expect(c.source.symbolsRefreshMs).toBe(60_000);
    expect(c.source.shard).toEqual({ index: 1, count: 3 });
    expect(loadConfig({}).source.shard).toEqual({ index: 0, count: 1 });
  });
  it('names a bad rule, list or shard', () => {
    expect(problems({ SYMBOLS: 'rule:colour=red' })).toEqual([expect.stringMatching(/^SYMBOLS: unknown key "colour"/)]);
    expect(problems({ SYMBOLS: 'BTC-USDT' })).toEqual([expect.stringMatching(/^SYMBOLS: each symbol must be letters and digits/)]);
    for (const shard of ['2/2', '1', '-1/2', '0/0', 'a/b', '1/2/3']) expect(problems({ SHARD: shard })).toEqual([expect.stringMatching(/^SHARD: must be i\/N/)]);
  });
});
