// Binance subscriptions of one open combined-stream connection, changed without a reconnect: the streams it carries
// are brought to the streams wanted by SUBSCRIBE / UNSUBSCRIBE messages ({"method":..,"params":[..],"id":N}, answered
// {"result":null,"id":N}), at most SUBSCRIBE_MESSAGES_PER_SECOND of them a second. Binance takes 5 incoming messages a
// second per connection and counts pongs among them: the rest of the 5 is left for those. Unsubscriptions go first, so
// a full connection makes room before it takes more.
import type { Logger } from '../common/log.ts';
import { AttemptLimiter } from './backoff.ts';
import type { IngestMetrics } from './metrics.ts';

export const SUBSCRIBE_MESSAGES_PER_SECOND = 3;
/** Streams named in one message: keeps a message small; a change of more streams takes several. */
export const STREAMS_PER_MESSAGE = 200;

export type SubscriptionMethod = 'SUBSCRIBE' | 'UNSUBSCRIBE';

export interface SubscriptionMessage {
  readonly method: SubscriptionMethod;
  readonly params: readonly string[];
}

/** Pure: the next message that brings `carried` towards `wanted` (unsubscriptions first), or undefined when equal. */
export function nextSubscriptionMessage(carried: ReadonlySet<string>, wanted: ReadonlySet<string>, maxParams = STREAMS_PER_MESSAGE): SubscriptionMessage | undefined {
  const gone = [...carried].filter((s) => !wanted.has(s));
  if (gone.length > 0) return { method: 'UNSUBSCRIBE', params: gone.slice(0, maxParams) };
  const added = [...wanted].filter((s) => !carried.has(s));
  if (added.length > 0) return { method: 'SUBSCRIBE', params: added.slice(0, maxParams) };
  return undefined;
}

export interface ConnectionSubscriptionsOptions {
  /** The streams the connection was opened with (named in its URL). */
  readonly carried: readonly string[];
  /** The streams wanted now (read at every step). */
  readonly wanted: () => ReadonlySet<string>;
  readonly send: (text: string) => void;
  readonly log: Logger;
  readonly metrics: IngestMetrics;
  readonly limiter?: AttemptLimiter;
  readonly now?: () => number;
  /** Streams whose UNSUBSCRIBE the exchange acknowledged: no frame of theirs follows on this connection. */
  readonly unsubscribed?: (streams: readonly string[]) => void;
}

let nextId = 1;

/** One connection's subscriptions: `sync()` after the wanted streams changed; `reply()` with the answers. */
export class ConnectionSubscriptions {
  private readonly carried: Set<string>;
  private readonly limiter: AttemptLimiter;
  private readonly now: () => number;
  private readonly pending = new Map<number, SubscriptionMessage>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly o: ConnectionSubscriptionsOptions) {
    this.carried = new Set(o.carried);
    this.limiter = o.limiter ?? new AttemptLimiter(SUBSCRIBE_MESSAGES_PER_SECOND, 1000);
    this.now = o.now ?? Date.now;
  }

  /** Streams the connection carries, counting what was asked for but not yet answered. */
  get streams(): ReadonlySet<string> {
    return this.carried;
  }

  /** Requests sent and not answered yet. */
  get unanswered(): number {
    return this.pending.size;
  }

  /** Sends what the pace allows now; schedules the rest. */
  sync(): void {
    if (this.closed || this.timer) return;
    for (;;) {
      const m = nextSubscriptionMessage(this.carried, this.o.wanted());
      if (!m) return;
      const wait = this.limiter.waitMs(this.now());
      if (wait > 0) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.sync();
        }, wait);
        return;
      }
      this.limiter.record(this.now());
      const id = nextId++;
      this.o.send(JSON.stringify({ method: m.method, params: m.params, id }));
      this.pending.set(id, m);
      for (const s of m.params) if (m.method === 'SUBSCRIBE') this.carried.add(s);
      else this.carried.delete(s);
      this.o.metrics.subscriptions(m.method, 'sent', m.params.length);
      this.o.log.info({ method: m.method, id, streams: m.params.length, first: m.params[0] }, 'subscription change sent');
    }
  }

  /**
   * A frame that is a reply ({"result":..,"id":N} or {"error":..,"id":N}): true when it was one of ours. An error
   * undoes the change, so the next sync asks again.
   */
  reply(text: string): boolean {
    if (this.pending.size === 0) return false;
    let r: { id?: unknown; result?: unknown; error?: { code?: unknown; msg?: unknown } } | null;
    try {
      r = JSON.parse(text) as typeof r;
    } catch {
      return false;
    }
    if (typeof r !== 'object' || r === null) return false;
    const m = typeof r.id === 'number' ? this.pending.get(r.id) : undefined;
    if (!m) return false;
    this.pending.delete(r.id as number);
    if (r.error !== undefined) {
      this.o.metrics.subscriptions(m.method, 'error', m.params.length);
      this.o.log.warn({ method: m.method, id: r.id, error: r.error, first: m.params[0] }, 'subscription change refused');
      for (const s of m.params) if (m.method === 'SUBSCRIBE') this.carried.delete(s);
      else this.carried.add(s);
      // Asked again at the pace, not at once: a refusal repeated in a tight loop would cost the connection.
      if (!this.timer && !this.closed) this.timer = setTimeout(() => ((this.timer = undefined), this.sync()), 1000);
      return true;
    }
    this.o.metrics.subscriptions(m.method, 'acknowledged', m.params.length);
    if (m.method === 'UNSUBSCRIBE') this.o.unsubscribed?.(m.params);
    return true;
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
