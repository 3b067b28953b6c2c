// Coinbase subscriptions: the signature against a vector computed here with node:crypto, the messages with and without
// credentials (a fresh signature on every call), and the books subscription's answer (subscribed or refused).
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { VenueOutput } from '../book/output.ts';
import { coinbaseVenue } from '../venue-feeds.ts';
import { coinbaseSignature } from './auth.ts';
import { CoinbaseSession } from './session.ts';

const SECRET = Buffer.from('tickwatch test secret, not a real one').toString('base64');
const CREDS = { key: 'test-key', secret: SECRET, passphrase: 'test-passphrase' };
/** Coinbase's prehash for a websocket subscription: timestamp + method + the verify path. */
const expected = (timestamp: string) => createHmac('sha256', Buffer.from(SECRET, 'base64')).update(`${timestamp}GET/users/self/verify`).digest('base64');

describe('Coinbase signed subscription', () => {
  it('signs timestamp + GET + /users/self/verify with the base64-decoded secret, base64 out', () => {
    expect(coinbaseSignature(SECRET, '1700000000')).toBe(expected('1700000000'));
    // The same vector written out (computed once with node:crypto), so that a change of both sides cannot pass.
    expect(coinbaseSignature(SECRET, '1700000000')).toBe('N680tYPXyIgfeB6M6T2cSCf5DEXNc1I6pOaLIZozyjU=');
    // The secret is decoded, not used as text.
    expect(coinbaseSignature(SECRET, '1700000000')).not.toBe(createHmac('sha256', SECRET).update('1700000000GET/users/self/verify').digest('base64'));
  });

  it('subscribes to level2_batch, ticker and matches in one unsigned message without credentials', () => {
    const v = coinbaseVenue({ products: ['BTC-USD', 'ETH-USD'], wsUrl: 'ws://127.0.0.1:1', credentials: undefined });
    expect(v.subscribe().map((m) => JSON.parse(m) as unknown)).toEqual([{ type: 'subscribe', product_ids: ['BTC-USD', 'ETH-USD'], channels: ['level2_batch', 'ticker', 'matches'] }]);
    expect(v.resubscribe('BTC-USD').map((m) => JSON.parse(m) as unknown)).toEqual([
      { type: 'unsubscribe', product_ids: ['BTC-USD'], channels: ['level2_batch'] },
      { type: 'subscribe', product_ids: ['BTC-USD'], channels: ['level2_batch'] },
    ]);
    expect(v.books?.channel).toBe('level2_batch');
  });

  it('with credentials signs a level2 message of its own afresh on every call, and never sends the secret', () => {
    let now = Date.parse('2026-12-05T12:00:00.750Z');
    const v = coinbaseVenue({ products: ['BTC-USD'], wsUrl: 'ws://127.0.0.1:1', credentials: CREDS }, () => now);
    const first = v.subscribe();
    const ts1 = String(Math.floor(now / 1000));
    expect(first.map((m) => JSON.parse(m) as unknown)).toEqual([
      { type: 'subscribe', product_ids: ['BTC-USD'], channels: ['level2'], key: 'test-key', passphrase: 'test-passphrase', timestamp: ts1, signature: expected(ts1) },
      { type: 'subscribe', product_ids: ['BTC-USD'], channels: ['ticker', 'matches'] },
    ]);
    now += 61_000; // the next open, a minute later
    const ts2 = String(Math.floor(now / 1000));
    const again = JSON.parse(v.subscribe()[0]!) as { timestamp: string; signature: string };
    expect(again).toMatchObject({ timestamp: ts2, signature: expected(ts2) });
    expect(again.signature).not.toBe(expected(ts1));
    const resub = v.resubscribe('BTC-USD').map((m) => JSON.parse(m) as Record<string, unknown>);
    expect(resub[0]).toEqual({ type: 'unsubscribe', product_ids: ['BTC-USD'], channels: ['level2'] });
    expect(resub[1]).toMatchObject({ type: 'subscribe', channels: ['level2'], timestamp: ts2, signature: expected(ts2) });
    for (const m of [...first, ...v.resubscribe('BTC-USD')]) expect(m).not.toContain(SECRET);
  });
});

describe('Coinbase books subscription answers', () => {
  const subscriptions = (...names: string[]) => JSON.stringify({ type: 'subscriptions', channels: names.map((name) => ({ name, product_ids: ['BTC-USD'] })) });
  const refusal = '{"type":"error","message":"Failed to subscribe","reason":"invalid signature"}';
  const answers = (s: CoinbaseSession, frame: string) => {
    const out: VenueOutput[] = [];
    s.frame(frame, 1, out);
    return out.filter((o) => o.kind === 'subscription');
  };

  it('is subscribed when a reply lists the books channel, refused by an error while awaited', () => {
    const s = new CoinbaseSession({ depth: 5, intervalMs: 0, bookChannel: 'level2' });
    s.subscribing();
    expect(answers(s, subscriptions('ticker', 'matches'))).toEqual([]);
    expect(answers(s, refusal)).toEqual([{ kind: 'subscription', channel: 'level2', status: 'refused', reason: 'Failed to subscribe: invalid signature' }]);
    // Answered: a later error is only a venue error (dead-lettered as before).
    expect(answers(s, refusal)).toEqual([]);
    s.subscribing();
    expect(answers(s, subscriptions('level2', 'ticker', 'matches'))).toEqual([{ kind: 'subscription', channel: 'level2', status: 'subscribed', reason: null }]);
    expect(answers(s, subscriptions('level2'))).toEqual([]);
  });

  it('still dead-letters the error frame itself', () => {
    const s = new CoinbaseSession({ depth: 5, intervalMs: 0, bookChannel: 'level2' });
    s.subscribing();
    const out: VenueOutput[] = [];
    s.frame(refusal, 1, out);
    expect(out[0]).toEqual({ kind: 'rejected', stream: 'error', reason: 'venue error: "Failed to subscribe" "invalid signature"' });
  });
});
