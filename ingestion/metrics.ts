// The ingestion worker's Prometheus metrics, in one registry served on /metrics. Hot-path counters are bound to
// their label values once (child caches), so counting a message costs no label hashing.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { tallyCounter, TallyHistogram } from './tally.ts';

/** Why a connection was replaced or re-opened: the label's whole value set. */
export type ReconnectReason = 'closed' | 'watchdog' | 'max-age' | 'serverShutdown' | 'oversized';

export type IngestMetrics = ReturnType<typeof createIngestMetrics>;

/** The books channels a venue may subscribe: the values of the `channel` label of refused subscriptions. */
export const BOOK_CHANNELS = { coinbase: ['level2', 'level2_batch'], gemini: ['l2'] } as const;

/** Dead-letter reasons as codes: the label's whole value set (the reason's text goes in the dead letter itself). */
export const DEAD_LETTER_CODES = ['oversized', 'not-json', 'missing-field', 'bad-field', 'mismatch', 'bad-stream', 'bad-symbol', 'crossed-book', 'venue-error', 'internal-error', 'other'] as const;
export type DeadLetterCode = (typeof DEAD_LETTER_CODES)[number];

const CODE_RULES: readonly (readonly [RegExp, DeadLetterCode])[] = [
  [/^frame of \d+ characters exceeds/, 'oversized'],
  [/^not (JSON|a JSON object)$/, 'not-json'],
  [/^venue error/, 'venue-error'],
  [/^internal error: /, 'internal-error'],
  [/^crossed book/, 'crossed-book'],
  [/^missing\b/, 'missing-field'],
  [/^stream /, 'bad-stream'],
  [/^(symbol|product_id) /, 'bad-symbol'],
  [/ does not match /, 'mismatch'],
  [/ (is not|are not|exceeds|must be) /, 'bad-field'],
];

/** The code of a mapper's rejection reason (a reason about one element of a list, `trades[3]: ...`, by its own). */
export function deadLetterCode(reason: string): DeadLetterCode {
  const r = reason.replace(/^\w+\[\d+\]: /, '');
  for (const [pattern, code] of CODE_RULES) if (pattern.test(r)) return code;
  return 'other';
}

/**
 * A label whose values come from outside (a frame's stream name): the known values as they are, anything else as
 * `other`, so no frame can mint a series. Without a known list (one-shot commands) the first `cap` values seen count.
 */
export function boundedLabel(known: readonly string[] | undefined, cap = 256): ((value: string) => string) & { allow(values: readonly string[], max: number): void } {
  const allowed = new Set(known ?? []);
  const label = (value: string) => {
    if (allowed.has(value)) return value;
    if (known === undefined && allowed.size < cap) {
      allowed.add(value);
      return value;
    }
    return 'other';
  };
  /** Values known later (symbols listed while running), up to `max` values in all: past it they stay `other`. */
  const allow = (values: readonly string[], max: number) => {
    for (const v of values) if (allowed.size < max) allowed.add(v);
  };
  return Object.assign(label, { allow });
}

/** The most stream label values a worker ever has (listings add some; delisted ones stay until the restart). */
export const MAX_STREAM_LABELS = 8192;

export interface IngestMetricsOptions {
  readonly defaultMetrics?: boolean;
  /** The subscribed streams (Binance stream names, venue names): the only values of the `stream` labels. */
  readonly streams?: readonly string[];
}

export function createIngestMetrics(opts: IngestMetricsOptions = {}) {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'tickwatch_ingestion_' });
  const r = [registry];
  // Counted and observed per message: tallies, read into series only when scraped (ingestion/tally.ts).
  const received = tallyCounter({ name: 'tickwatch_ingestion_messages_received_total', help: 'Frames received, by stream', labelName: 'stream', registers: r });
  const produced = tallyCounter({ name: 'tickwatch_ingestion_records_produced_total', help: 'Records acknowledged by Kafka, by topic', labelName: 'topic', registers: r });
  const deadLettered = new Counter({ name: 'tickwatch_ingestion_dead_letters_total', help: 'Frames rejected to the dead-letter topic, by reason', labelNames: ['reason'], registers: r });
  const ignored = new Counter({ name: 'tickwatch_ingestion_messages_ignored_total', help: 'Well-formed frames not ingested (replies, unsubscribed streams)', labelNames: ['why'], registers: r });
  const duplicates = new Counter({ name: 'tickwatch_ingestion_duplicates_dropped_total', help: 'Ticks dropped because their id was already passed on (reconnect overlap)', labelNames: ['stream'], registers: r });
  const reconnects = new Counter({ name: 'tickwatch_ingestion_reconnects_total', help: 'Connections replaced or re-opened, by reason', labelNames: ['reason'], registers: r });
  const gaps = new Counter({ name: 'tickwatch_ingestion_gaps_detected_total', help: 'Holes detected, by stream', labelNames: ['stream'], registers: r });
  const gapIds = new Counter({ name: 'tickwatch_ingestion_gap_ids_total', help: 'Ids missing from holes, by stream and outcome (detected, backfilled, lost)', labelNames: ['stream', 'outcome'], registers: r });
  const gapSeconds = new Counter({ name: 'tickwatch_ingestion_gap_seconds_total', help: 'Seconds of book tickers lost in holes that cannot be backfilled', labelNames: ['stream'], registers: r });
  const backfillRequests = new Counter({ name: 'tickwatch_ingestion_backfill_requests_total', help: 'REST backfill requests, by endpoint and HTTP status', labelNames: ['endpoint', 'status'], registers: r });
  const restWeight = new Gauge({ name: 'tickwatch_ingestion_rest_used_weight_1m', help: 'REST request weight used in the current minute (x-mbx-used-weight-1m)', registers: r });
  const lag = new TallyHistogram({
    name: 'tickwatch_ingestion_receive_lag_seconds',
    help: 'Receive time minus exchange time',
    labelName: 'type',
    buckets: [-2, -1, -0.5, -0.1, 0, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 60],
    registers: r,
  });
  const ackLatency = new TallyHistogram({
    name: 'tickwatch_ingestion_ack_latency_seconds',
    help: 'Receive to Kafka acknowledgement',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: r,
  });
  const bufferDepth = new Gauge({ name: 'tickwatch_ingestion_producer_buffer_depth', help: 'Records waiting for Kafka (bounded by PRODUCER_BUFFER_MAX)', registers: r });
  const heldTicks = new Gauge({ name: 'tickwatch_ingestion_ticks_held', help: 'Ticks held behind a hole being backfilled', registers: r });
  const paused = new Gauge({ name: 'tickwatch_ingestion_sockets_paused', help: '1 while socket reading is paused for backpressure', registers: r });
  const refused = new Counter({
    name: 'tickwatch_ingestion_subscriptions_refused_total',
    help: 'Books subscriptions the venue refused (e.g. Coinbase level2 without valid credentials), by venue and channel',
    labelNames: ['venue', 'channel'],
    registers: r,
  });
  const subscriptionChanges = new Counter({
    name: 'tickwatch_ingestion_subscription_streams_total',
    help: 'Streams in SUBSCRIBE / UNSUBSCRIBE messages on open connections, by method and outcome (sent, acknowledged, error)',
    labelNames: ['method', 'outcome'],
    registers: r,
  });
  const symbolChanges = new Counter({ name: 'tickwatch_ingestion_symbol_changes_total', help: 'Symbols of this shard listed or delisted by the symbol rule', labelNames: ['change'], registers: r });
  const symbols = new Gauge({ name: 'tickwatch_ingestion_symbols', help: 'Symbols this process streams (its shard of the resolved list)', registers: r });
  const leaseActive = new Gauge({ name: 'tickwatch_ingestion_lease_active', help: '1 while this process holds its shard lease and streams; 0 while it waits as a standby', registers: r });
  const connections = new Gauge({ name: 'tickwatch_ingestion_connection_state', help: 'Per connection slot: 0 down, 1 connecting, 2 open, 3 switching over', labelNames: ['connection'], registers: r });

  // Series for the known label values exist from the start, so dashboards and rate() see zero, not "no data".
  for (const stream of ['trade', 'aggTrade', 'bookTicker']) {
    gaps.labels(stream).inc(0);
    for (const outcome of ['detected', 'backfilled', 'lost']) gapIds.labels(stream, outcome).inc(0);
  }
  gapSeconds.labels('bookTicker').inc(0);
  for (const method of ['SUBSCRIBE', 'UNSUBSCRIBE']) for (const outcome of ['sent', 'acknowledged', 'error']) subscriptionChanges.labels(method, outcome).inc(0);
  for (const change of ['listed', 'delisted']) symbolChanges.labels(change).inc(0);
  for (const code of DEAD_LETTER_CODES) deadLettered.labels(code).inc(0);
  for (const channel of BOOK_CHANNELS.coinbase) refused.labels('coinbase', channel).inc(0);

  /** Children for values from outside: a value already allowed costs one Map lookup; others go through the bound. */
  const bounded = <C>(make: (k: string) => C, label: (v: string) => string) => {
    const m = new Map<string, C>();
    let other: C | undefined;
    return (v: string): C => {
      let c = m.get(v);
      if (c !== undefined) return c;
      const l = label(v);
      if (l !== v) return (other ??= make(l));
      m.set(v, (c = make(v)));
      return c;
    };
  };

  const cache = <C>(make: (k: string) => C) => {
    const m = new Map<string, C>();
    return (k: string): C => {
      let c = m.get(k);
      if (c === undefined) m.set(k, (c = make(k)));
      return c;
    };
  };

  const stream = boundedLabel(opts.streams);

  return {
    registry,
    received: bounded((s) => received.labels(s), stream),
    produced: cache((t) => produced.labels(t)),
    deadLettered: (reason: string) => deadLettered.labels(deadLetterCode(reason)).inc(),
    ignored: bounded((w) => ignored.labels(w), boundedLabel(undefined, 64)),
    duplicates: bounded((s) => duplicates.labels(s), stream),
    reconnects: (reason: ReconnectReason) => reconnects.labels(reason).inc(),
    /** The channel label is one of the venue's books channels or `other`. */
    subscriptionRefused: (venue: keyof typeof BOOK_CHANNELS, channel: string) =>
      refused.labels(venue, (BOOK_CHANNELS[venue] as readonly string[]).includes(channel) ? channel : 'other').inc(),
    gaps,
    gapIds,
    gapSeconds,
    backfillRequests,
    restWeight,
    lag: cache((t) => lag.labels(t)),
    ackLatency,
    bufferDepth,
    heldTicks,
    paused,
    connections,
    subscriptions: (method: 'SUBSCRIBE' | 'UNSUBSCRIBE', outcome: 'sent' | 'acknowledged' | 'error', streams: number) => subscriptionChanges.labels(method, outcome).inc(streams),
    symbolChanges: (change: 'listed' | 'delisted', n: number) => symbolChanges.labels(change).inc(n),
    symbols,
    leaseActive,
    /** Stream names subscribed after the start may label series too (within MAX_STREAM_LABELS). */
    allowStreams: (streams: readonly string[]) => stream.allow(streams, MAX_STREAM_LABELS),
  };
}
