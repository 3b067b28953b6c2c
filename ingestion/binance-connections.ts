// The Binance connection slots of a symbol list that changes while the worker runs (symbols by rule): every stream of
// a symbol on one slot (a lost connection then names whole symbols), a listed symbol on the first slot with room for
// its streams (STREAMS_PER_CONNECTION, at most Binance's 1024, and a URL within BINANCE_URL_MAX_CHARS) or on a new slot
// when all are full, a delisted one unsubscribed from its slot, and a slot left without streams closed. The slots share
// one connection-attempt limiter.
import type { Config } from '../common/config.ts';
import { AttemptLimiter } from './backoff.ts';
import { streamNames } from './binance/mapper.ts';
import { Feed, SlotRoom, type FeedSink, type SlotOptions } from './feed.ts';

export interface SymbolChange {
  readonly listed: readonly string[];
  readonly delisted: readonly string[];
}

export interface BinanceConnectionsOptions extends SlotOptions {
  readonly source: Config['source'];
  /** Slot names are `${name}-${n}`. */
  readonly name: string;
  readonly limiter: AttemptLimiter;
  /** Frames and losses of a slot; `symbols()` are the symbols the slot carries at that moment. */
  readonly sink: (symbols: () => string[]) => FeedSink;
  /** Whether a slot opened now starts paused (backpressure). */
  readonly paused: () => boolean;
}

const symbolOf = (stream: string) => stream.slice(0, stream.indexOf('@')).toUpperCase();

export class BinanceConnections {
  /** The live slots, in the order they were opened. */
  readonly feeds: Feed[] = [];
  private readonly bySymbol = new Map<string, Feed[]>();
  private started = false;
  private opened = 0;

  constructor(private readonly o: BinanceConnectionsOptions) {}

  get symbols(): string[] {
    return [...this.bySymbol.keys()];
  }

  /** Brings the slots to `symbols`; returns what changed. Before start() it only lays out the slots. */
  setSymbols(symbols: readonly string[]): SymbolChange {
    const src = this.o.source;
    const next = new Set(symbols.map((s) => s.toUpperCase()));
    const delisted = [...this.bySymbol.keys()].filter((s) => !next.has(s));
    const listed = [...next].filter((s) => !this.bySymbol.has(s));
    const touched = new Map<Feed, { streams: Set<string>; room: SlotRoom }>();
    const slotOf = (f: Feed) => {
      let t = touched.get(f);
      if (!t) {
        touched.set(f, (t = { streams: new Set(f.streams), room: new SlotRoom(src.wsUrl, src.streamsPerConnection) }));
        for (const stream of t.streams) t.room.add(stream);
      }
      return t;
    };
    for (const symbol of delisted) {
      for (const f of this.bySymbol.get(symbol)!) {
        const t = slotOf(f);
        for (const stream of [...t.streams]) {
          if (symbolOf(stream) !== symbol) continue;
          t.streams.delete(stream);
          t.room.remove(stream);
        }
      }
      this.bySymbol.delete(symbol);
    }
    const fresh: Feed[] = [];
    for (const symbol of listed) {
      const streams = streamNames([symbol], src.streamTypes, src.market);
      // Together when they fit in one slot at all (STREAMS_PER_CONNECTION below the stream types: one by one).
      const chunks = streams.length <= src.streamsPerConnection ? [streams] : streams.map((x) => [x]);
      const on: Feed[] = [];
      for (const chunk of chunks) {
        let f = this.feeds.find((x) => slotOf(x).room.fits(chunk));
        if (!f) {
          f = this.slot();
          fresh.push(f);
        }
        const t = slotOf(f);
        for (const stream of chunk) {
          t.streams.add(stream);
          t.room.add(stream);
        }
        if (!on.includes(f)) on.push(f);
      }
      this.bySymbol.set(symbol, on);
    }
    for (const [f, { streams: s }] of touched) {
      if (s.size === 0) {
        this.feeds.splice(this.feeds.indexOf(f), 1);
        void f.stop();
      } else f.setStreams(s);
    }
    if (this.started) for (const f of fresh) if (this.feeds.includes(f)) this.startSlot(f);
    return { listed, delisted };
  }

  start(): void {
    this.started = true;
    for (const f of this.feeds) this.startSlot(f);
  }

  private startSlot(f: Feed): void {
    if (this.o.paused()) f.pause();
    f.start();
  }

  private slot(): Feed {
    const src = this.o.source;
    let feed: Feed | undefined;
    feed = new Feed({
      ...src.timing,
      clock: this.o.clock,
      log: this.o.log,
      metrics: this.o.metrics,
      name: `${this.o.name}-${this.opened++}`,
      wsUrl: src.wsUrl,
      streams: [],
      maxAgeMs: src.connectionMaxAgeMs,
      maxPayloadBytes: src.socketMaxPayloadBytes,
      limiter: this.o.limiter,
      sink: this.o.sink(() => [...new Set([...(feed?.streams ?? [])].map(symbolOf))]),
    });
    this.feeds.push(feed);
    return feed;
  }
}
