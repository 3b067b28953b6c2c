import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CaptureWriter, frameSymbol, mergeCaptures, parseCaptureLine, readCapture } from './capture.ts';

describe('capture lines', () => {
  it('parses `<ns> <json>` into µs without losing the ns', () => {
    const f = parseCaptureLine('1723161254087896568 {"stream":"btcusdt@trade","data":{}}');
    expect(f).toEqual({ receiveNs: 1723161254087896568n, receiveTimeUs: 1723161254087896, text: '{"stream":"btcusdt@trade","data":{}}' });
    expect(parseCaptureLine('garbage')).toBeUndefined();
    expect(frameSymbol('{"stream":"ethusdt@bookTicker","data":{}}')).toBe('ethusdt');
  });

  it('writes per symbol and UTC day, rotates at midnight, and reads back merged in receive order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'capture-'));
    try {
      const w = new CaptureWriter(dir);
      const day1 = 1723161599000000000n; // 2024-08-08 23:59:59 UTC
      const day2 = 1723161600500000000n; // 2024-08-09 00:00:00.5 UTC
      w.write(day1, '{"stream":"btcusdt@trade","data":{"t":1}}');
      w.write(day1 + 1n, '{"stream":"ethusdt@trade","data":{"t":1}}');
      w.write(day2, '{"stream":"btcusdt@trade","data":{"t":2}}');
      await w.close();
      expect(readdirSync(dir).sort()).toEqual(['btcusdt_20240808.gz', 'btcusdt_20240809.gz', 'ethusdt_20240808.gz']);
      const frames = [];
      for await (const f of mergeCaptures(readdirSync(dir).map((n) => readCapture(join(dir, n))))) frames.push(f.receiveNs);
      expect(frames).toEqual([day1, day1 + 1n, day2]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
