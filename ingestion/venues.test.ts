// Canonical symbols: one BASE-QUOTE form for every venue, unknown quotes refused rather than guessed.
import { describe, expect, it } from 'vitest';
import { canonicalSymbol, SymbolMap } from './venues.ts';

describe('canonical symbols', () => {
  it('splits each venue symbol at its quote asset', () => {
    expect(canonicalSymbol('binance', 'BTCUSDT')).toBe('BTC-USDT');
    expect(canonicalSymbol('binance', 'ethbtc')).toBe('ETH-BTC');
    expect(canonicalSymbol('binance', 'BTCFDUSD')).toBe('BTC-FDUSD');
    expect(canonicalSymbol('binance', 'BTCTUSD')).toBe('BTC-TUSD');
    expect(canonicalSymbol('gemini', 'GRTUSD')).toBe('GRT-USD');
    expect(canonicalSymbol('gemini', 'BTCGUSD')).toBe('BTC-GUSD');
    expect(canonicalSymbol('gemini', 'zecltc')).toBe('ZEC-LTC');
    expect(canonicalSymbol('coinbase', 'BTC-USD')).toBe('BTC-USD');
  });

  it('refuses what it cannot split', () => {
    expect(canonicalSymbol('coinbase', 'BTCUSD')).toBeUndefined();
    expect(canonicalSymbol('gemini', 'BTCXYZ')).toBeUndefined();
    expect(canonicalSymbol('binance', 'USDT')).toBeUndefined();
    expect(canonicalSymbol('binance', 'BTC USDT')).toBeUndefined();
    expect(new SymbolMap('gemini').canonical('FILUSD')).toBe('FIL-USD');
  });
});
