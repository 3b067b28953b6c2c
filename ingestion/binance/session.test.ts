// The Binance session's own rule on time: a live tick far behind its stream's last one is refused (a forged or corrupt
// frame), while the stream's ordinary jitter and a stream far behind the wall clock (a replayed capture) pass.
import { describe, expect, it } from 'vitest';
import type { VenueOutput } from '../book/output.ts';
import { createBinanceMapper } from './mapper.ts';
import { BinanceSession, MAX_BEHIND_STREAM_MS } from './session.ts';
import { deadLetterCode } from '../metrics.ts';

const T0 = 1723161256313; // 2024-08-08, as in the recordings: years behind this run's receive times
const trade = (id: number, timeMs: number) =>
  `{"stream":"btcusdt@trade","data":{"e":"trade","E":${timeMs},"s":"BTCUSDT","t":${id},"p":"61800.20","q":"0.010","T":${timeMs},"m":true,"M":true}}`;

function session() {
  const mapper = createBinanceMapper({ market: 'spot', maxFrameBytes: 65_536, streamTypes: ['trade'], symbols: ['BTCUSDT'] });
  return new BinanceSession({ market: 'spot', mapper });
}

function offer(s: BinanceSession, text: string): VenueOutput[] {
  const out: VenueOutput[] = [];
  s.frame(text, Date.now() * 1000, out);
  return out;
}

describe('BinanceSession times', () => {
  it('refuses a tick an hour or more behind its stream, with a reason that has a code; the stream goes on', () => {
    const s = session();
    expect(offer(s, trade(100, T0)).map((o) => o.kind)).toEqual(['trade']);
    // A little out of order (the exchange's own jitter): passes.
    expect(offer(s, trade(101, T0 - 2_000)).map((o) => o.kind)).toEqual(['trade']);
    const far = offer(s, trade(102, T0 - 2_000 - MAX_BEHIND_STREAM_MS - 1));
    expect(far).toEqual([{ kind: 'rejected', stream: 'btcusdt@trade', reason: expect.stringMatching(/not within an hour of the stream's last/) }]);
    expect(deadLetterCode((far[0] as { reason: string }).reason)).toBe('bad-field');
    // Refused, so not the stream's reference: the next real one passes (102 is then a hole for the backfill to fill).
    expect(offer(s, trade(103, T0 + 1_000)).map((o) => o.kind)).toEqual(['needBackfill']);
  });
});
