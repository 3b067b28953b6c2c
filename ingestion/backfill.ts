// REST backfill: fetches missing trades and aggTrades by id (historicalTrades / aggTrades ?fromId=), order book
// snapshots (depth) and the instrument list (exchangeInfo, for symbols by rule), within one request-weight budget per minute, honouring 429 / 418 and their Retry-After. It knows
// nothing about Kafka.
import type { Logger } from '../common/log.ts';
import type { Instrument } from '../common/symbol-rule.ts';
import type { AggTrade, Market, Trade } from '../common/records.ts';
import { mapRestAggTrade, mapRestTrade } from './binance/mapper.ts';
import type { IngestMetrics } from './metrics.ts';
import { nowUs, sleep } from '../common/time.ts';

const ENDPOINTS = {
  spot: { trade: { path: '/api/v3/historicalTrades', weight: 25 }, aggTrade: { path: '/api/v3/aggTrades', weight: 4 } },
  usdm: { trade: { path: '/fapi/v1/historicalTrades', weight: 20 }, aggTrade: { path: '/fapi/v1/aggTrades', weight: 20 } },
} as const;

/** Order book snapshots: the deepest page of 1000 levels per side costs 50 (spot) or 20 (USD-M). */
const DEPTH = { spot: { path: '/api/v3/depth', weight: 50 }, usdm: { path: '/fapi/v1/depth', weight: 20 } } as const;
export const DEPTH_SNAPSHOT_LEVELS = 1000;

/**
 * The instrument list (symbols by rule). Spot documents weight 20; USD-M is charged the same, which is never less
 * than it costs there.
 */
const EXCHANGE_INFO = { spot: { path: '/api/v3/exchangeInfo', weight: 20 }, usdm: { path: '/fapi/v1/exchangeInfo', weight: 20 } } as const;

export const BACKFILL_PAGE = 1000;

export interface BackfillOptions {
  readonly restUrl: string;
  readonly market: Market;
  readonly weightPerMinute: number;
  readonly log: Logger;
  readonly metrics?: IngestMetrics;
  readonly fetch?: typeof fetch;
  /** Attempts per page on network errors and 5xx before giving up. */
  readonly attempts?: number;
  readonly now?: () => number;
}

export class BackfillError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'BackfillError';
  }
}


export class RestBackfiller {
  private minute = 0;
  private usedWeight = 0;
  private bannedUntil = 0;
  private readonly fetch: typeof fetch;
  private readonly now: () => number;

  constructor(private readonly opts: BackfillOptions) {
    this.fetch = opts.fetch ?? globalThis.fetch;
    this.now = opts.now ?? Date.now;
  }

  /** Up to `limit` trades from `fromId` on, in id order. */
  async trades(symbol: string, fromId: number, limit = BACKFILL_PAGE): Promise<Trade[]> {
    const rows = await this.get('trade', symbol, fromId, limit);
    return rows.map((r) => check(mapRestTrade(this.opts.market, symbol, r, nowUs()), symbol));
  }

  /** Up to `limit` aggTrades from `fromId` on, in id order. */
  async aggTrades(symbol: string, fromId: number, limit = BACKFILL_PAGE): Promise<AggTrade[]> {
    const rows = await this.get('aggTrade', symbol, fromId, limit);
    return rows.map((r) => check(mapRestAggTrade(this.opts.market, symbol, r, nowUs()), symbol));
  }

  /** The REST order book snapshot of `symbol` (1000 levels per side), as parsed JSON: BinanceBooks checks it. */
  async depthSnapshot(symbol: string): Promise<unknown> {
    const ep = DEPTH[this.opts.market];
    const body = await this.request(ep, `symbol=${encodeURIComponent(symbol)}&limit=${DEPTH_SNAPSHOT_LEVELS}`, { symbol });
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new BackfillError(`GET ${ep.path} for ${symbol}: response is not an object`);
    return body;
  }

  /**
   * The exchange's instruments (exchangeInfo `symbols[]`: symbol, status, baseAsset, quoteAsset), within the same
   * weight budget as the backfills. A row without those fields, or with a symbol that is no valid stream name, is left
   * out and logged.
   */
  async instruments(): Promise<Instrument[]> {
    const ep = EXCHANGE_INFO[this.opts.market];
    const body = (await this.request(ep, '', {})) as { symbols?: unknown } | null;
    if (typeof body !== 'object' || body === null || !Array.isArray(body.symbols)) throw new BackfillError(`GET ${ep.path}: response has no symbols array`);
    const out: Instrument[] = [];
    let bad = 0;
    for (const r of body.symbols as Record<string, unknown>[]) {
      const { symbol, status, baseAsset, quoteAsset } = r ?? {};
      if (typeof symbol === 'string' && /^[A-Z0-9]{2,20}$/.test(symbol) && typeof status === 'string' && typeof baseAsset === 'string' && typeof quoteAsset === 'string') {
        out.push({ symbol, status, baseAsset, quoteAsset });
      } else bad++;
    }
    if (bad > 0) this.opts.log.warn({ path: ep.path, rows: bad }, 'instrument rows without symbol, status, baseAsset or quoteAsset left out');
    return out;
  }

  /** Waits until `weight` fits in this minute's budget, then books it. */
  private async spend(weight: number): Promise<void> {
    for (;;) {
      const now = this.now();
      if (now < this.bannedUntil) {
        await sleep(this.bannedUntil - now);
        continue;
      }
      const minute = Math.floor(now / 60_000);
      if (minute !== this.minute) {
        this.minute = minute;
        this.usedWeight = 0;
      }
      if (this.usedWeight + weight <= this.opts.weightPerMinute) {
        this.usedWeight += weight;
        return;
      }
      const waitMs = (minute + 1) * 60_000 - now + 50;
      this.opts.log.warn({ usedWeight: this.usedWeight, budget: this.opts.weightPerMinute, waitMs }, 'REST weight budget spent: waiting for the next minute');
      await sleep(waitMs);
    }
  }

  private async get(kind: 'trade' | 'aggTrade', symbol: string, fromId: number, limit: number): Promise<unknown[]> {
    const ep = ENDPOINTS[this.opts.market][kind];
    const query = `symbol=${encodeURIComponent(symbol)}&fromId=${fromId}&limit=${Math.min(BACKFILL_PAGE, Math.max(1, limit))}`;
    const rows = await this.request(ep, query, { symbol, fromId });
    if (!Array.isArray(rows)) throw new BackfillError(`GET ${ep.path}?${query}: response is not an array`);
    return rows;
  }

  /** One GET within the weight budget: retries network errors and 5xx, waits out 429 / 418; returns the parsed body. */
  private async request(ep: { readonly path: string; readonly weight: number }, query: string, context: Record<string, unknown>): Promise<unknown> {
    const url = `${this.opts.restUrl}${ep.path}${query === '' ? '' : `?${query}`}`;
    const attempts = this.opts.attempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      await this.spend(ep.weight);
      let res: Response;
      try {
        res = await this.fetch(url, { signal: AbortSignal.timeout(10_000) });
      } catch (err) {
        this.opts.metrics?.backfillRequests.labels(ep.path, 'error').inc();
        if (attempt >= attempts) throw new BackfillError(`GET ${url} failed: ${(err as Error).message}`);
        await sleep(Math.min(10_000, 250 * 2 ** attempt));
        continue;
      }
      this.opts.metrics?.backfillRequests.labels(ep.path, String(res.status)).inc();
      const used = Number(res.headers.get('x-mbx-used-weight-1m'));
      if (Number.isFinite(used) && used > 0) {
        // The server's count wins when it is higher (other clients on the same IP spend the same budget).
        this.usedWeight = Math.max(this.usedWeight, used);
        this.opts.metrics?.restWeight.set(used);
      }
      if (res.status === 429 || res.status === 418) {
        const retryAfterS = Number(res.headers.get('retry-after'));
        const waitMs = Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS * 1000 : 60_000;
        this.bannedUntil = this.now() + waitMs;
        this.opts.log.warn({ status: res.status, waitMs, ...context, path: ep.path }, 'REST rate limited: honouring Retry-After');
        await res.body?.cancel();
        continue;
      }
      if (!res.ok) {
        const body = (await res.text()).slice(0, 200);
        if (res.status < 500 || attempt >= attempts) throw new BackfillError(`GET ${url}: HTTP ${res.status} ${body}`, res.status);
        await sleep(Math.min(10_000, 250 * 2 ** attempt));
        continue;
      }
      try {
        return (await res.json()) as unknown;
      } catch {
        throw new BackfillError(`GET ${url}: response is not JSON`);
      }
    }
  }
}

function check<T>(r: T | string, symbol: string): T {
  if (typeof r === 'string') throw new BackfillError(`bad REST row for ${symbol}: ${r}`);
  return r;
}
