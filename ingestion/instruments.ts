// Which symbols this process streams: SYMBOLS as listed, or its rule applied to the exchange's instrument list
// (exchangeInfo over REST, within the backfills' weight budget), then this shard's part (SHARD=i/N, shard.ts). A rule is
// resolved again every SYMBOLS_REFRESH_SECONDS; what changed is handed on (subscribed, unsubscribed), logged and
// counted. A resolution that fails keeps the symbols as they are.
import type { Config } from '../common/config.ts';
import type { Logger } from '../common/log.ts';
import { selectSymbols, type Instrument } from '../common/symbol-rule.ts';
import type { SymbolChange } from './binance-connections.ts';
import type { IngestMetrics } from './metrics.ts';
import { shardSymbols } from './shard.ts';

export interface InstrumentSource {
  instruments(): Promise<Instrument[]>;
}

/** This shard's symbols, sorted: the list, or the rule over the exchange's instruments. */
export async function resolveSymbols(src: Config['source'], rest: InstrumentSource): Promise<string[]> {
  const all = src.symbolRule ? selectSymbols(src.symbolRule, await rest.instruments()) : [...new Set(src.symbols)].sort();
  return shardSymbols(all, src.shard);
}

export interface SymbolRefreshOptions {
  readonly source: Config['source'];
  readonly rest: InstrumentSource;
  readonly log: Logger;
  readonly metrics: IngestMetrics;
  /** Brings the subscriptions to `symbols`; returns what changed. */
  readonly apply: (symbols: readonly string[]) => SymbolChange;
}

/** The periodic re-resolution of a symbol rule (nothing to do for a list). */
export class SymbolRefresh {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SymbolChange | undefined> | undefined;
  private stopped = false;

  constructor(private readonly o: SymbolRefreshOptions) {}

  start(): void {
    if (!this.o.source.symbolRule || this.stopped) return;
    this.timer = setTimeout(() => {
      void this.refresh().finally(() => this.start());
    }, this.o.source.symbolsRefreshMs);
  }

  /** Resolves the rule now and applies the result; undefined when it failed or was stopped. */
  refresh(): Promise<SymbolChange | undefined> {
    return (this.running ??= this.resolveAndApply().finally(() => (this.running = undefined)));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async resolveAndApply(): Promise<SymbolChange | undefined> {
    const { source, log, metrics } = this.o;
    let symbols: string[];
    try {
      symbols = await resolveSymbols(source, this.o.rest);
    } catch (err) {
      log.warn({ err: (err as Error).message, rule: source.symbolRule?.text }, 'resolving the symbol rule failed: keeping the symbols as they are');
      return undefined;
    }
    if (this.stopped) return undefined;
    let change: SymbolChange;
    try {
      change = this.o.apply(symbols);
    } catch (err) {
      // Applying goes down to the sockets (SUBSCRIBE frames): a failure there must not end the process.
      log.error({ err: (err as Error).message, rule: source.symbolRule?.text, symbols: symbols.length }, 'applying the resolved symbols failed: trying again at the next resolution');
      return undefined;
    }
    metrics.symbols.set(symbols.length);
    if (change.listed.length > 0 || change.delisted.length > 0) {
      metrics.symbolChanges('listed', change.listed.length);
      metrics.symbolChanges('delisted', change.delisted.length);
      log.info({ listed: change.listed.slice(0, 50), delisted: change.delisted.slice(0, 50), listedCount: change.listed.length, delistedCount: change.delisted.length, symbols: symbols.length }, 'symbol rule resolved: subscriptions changed');
    }
    return change;
  }
}
