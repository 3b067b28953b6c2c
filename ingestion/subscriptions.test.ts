import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../common/log.ts';
import { createIngestMetrics } from './metrics.ts';
import { ConnectionSubscriptions, nextSubscriptionMessage, SUBSCRIBE_MESSAGES_PER_SECOND } from './subscriptions.ts';

const log = createLogger('silent', 'test');

describe('nextSubscriptionMessage', () => {
  it('unsubscribes first, then subscribes, in messages of at most maxParams streams', () => {
    const carried = new Set(['a@trade', 'b@trade', 'c@trade']);
    const wanted = new Set(['c@trade', 'd@trade', 'e@trade', 'f@trade']);
    expect(nextSubscriptionMessage(carried, wanted)).toEqual({ method: 'UNSUBSCRIBE', params: ['a@trade', 'b@trade'] });
    expect(nextSubscriptionMessage(new Set(['c@trade']), wanted, 2)).toEqual({ method: 'SUBSCRIBE', params: ['d@trade', 'e@trade'] });
    expect(nextSubscriptionMessage(wanted, wanted)).toBeUndefined();
  });
});

describe('ConnectionSubscriptions', () => {
  afterEach(() => vi.useRealTimers());

  it(`sends at most ${SUBSCRIBE_MESSAGES_PER_SECOND} messages a second and reaches the wanted streams`, () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const sent: { at: number; m: { method: string; params: string[]; id: number } }[] = [];
    let wanted = new Set<string>(['x@trade']);
    const subs = new ConnectionSubscriptions({
      carried: ['x@trade'],
      wanted: () => wanted,
      send: (t) => sent.push({ at: Date.now(), m: JSON.parse(t) as { method: string; params: string[]; id: number } }),
      log,
      metrics: createIngestMetrics({ defaultMetrics: false }),
    });
    // 2,000 new streams: 10 messages of 200.
    wanted = new Set(['x@trade', ...Array.from({ length: 2000 }, (_, i) => `s${i}@trade`)]);
    subs.sync();
    expect(sent).toHaveLength(SUBSCRIBE_MESSAGES_PER_SECOND);
    vi.advanceTimersByTime(5_000);
    expect(sent).toHaveLength(10);
    expect([...subs.streams].sort()).toEqual([...wanted].sort());
    for (const { at } of sent) expect(sent.filter((o) => o.at > at - 1000 && o.at <= at).length).toBeLessThanOrEqual(SUBSCRIBE_MESSAGES_PER_SECOND);
    expect(new Set(sent.map((s) => s.m.id)).size).toBe(10);
    subs.close();
  });

  it('counts replies, and asks again for what the exchange refused', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const sent: { method: string; params: string[]; id: number }[] = [];
    const metrics = createIngestMetrics({ defaultMetrics: false });
    const subs = new ConnectionSubscriptions({ carried: [], wanted: () => new Set(['a@trade']), send: (t) => sent.push(JSON.parse(t) as (typeof sent)[number]), log, metrics });
    subs.sync();
    expect(sent).toEqual([{ method: 'SUBSCRIBE', params: ['a@trade'], id: expect.any(Number) }]);
    expect(subs.unanswered).toBe(1);
    expect(subs.reply(JSON.stringify({ error: { code: 2, msg: 'Invalid request' }, id: sent[0]!.id }))).toBe(true);
    expect(subs.streams.has('a@trade')).toBe(false);
    vi.advanceTimersByTime(1_500);
    expect(sent).toHaveLength(2);
    expect(subs.reply(JSON.stringify({ result: null, id: 987654 }))).toBe(false);
    expect(subs.reply('{"stream":"a@trade","data":{}}')).toBe(false);
    // Malformed frames are not replies (they go on to be dead-lettered).
    for (const bad of ['null', '1', '"x"', '[]', '{', '']) expect(subs.reply(bad)).toBe(false);
    expect(subs.reply(JSON.stringify({ result: null, id: sent[1]!.id }))).toBe(true);
    expect(subs.unanswered).toBe(0);
    // With nothing asked, nothing is taken for a reply.
    expect(subs.reply(JSON.stringify({ result: null, id: sent[1]!.id }))).toBe(false);
    expect(subs.streams.has('a@trade')).toBe(true);
    subs.close();
  });
});
