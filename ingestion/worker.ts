// The ingestion worker: resolves this shard's symbols (instruments.ts), wires the Binance connection slots
// (binance-connections.ts, up to STREAMS_PER_CONNECTION streams each) to Binance's session, router and REST loops
// (binance/ingest.ts), one feed per enabled venue (Coinbase, Gemini) to its session and router, and the Kafka producer;
// resumes from the last ids in Kafka, follows a symbol rule's listings and delistings, pauses the sockets while the
// producer buffer is full, and serves /metrics and /healthz.
import type { Config } from '../common/config.ts';
import { startHttpEndpoint, type HttpEndpoint } from '../common/http.ts';
import { createKafka, createTopics, ensureTopics } from '../common/kafka.ts';
import type { Worker } from '../common/lifecycle.ts';
import type { Logger } from '../common/log.ts';
import { AttemptLimiter } from './backoff.ts';
import { RestBackfiller } from './backfill.ts';
import { BinanceIngest } from './binance/ingest.ts';
import { createBinanceMapper, streamNames } from './binance/mapper.ts';
import { BinanceConnections } from './binance-connections.ts';
import { Feed, systemClock, type Clock } from './feed.ts';
import { resolveSymbols, SymbolRefresh } from './instruments.ts';
import { createIngestMetrics, type IngestMetrics } from './metrics.ts';
import { TickProducer } from './producer.ts';
import { readLastIds } from './resume.ts';
import type { RecordSink, VenueRouter } from './router.ts';
import { enabledVenues, venueRouter, type BooksChannel } from './venue-feeds.ts';

export interface IngestionOptions {
  readonly log: Logger;
  readonly clock?: Clock;
  /** Serve /metrics and /healthz (default true); port 0 picks a free one. */
  readonly http?: boolean;
  readonly httpPort?: number;
  readonly onAck?: (latencyUs: number) => void;
  /** Pass to skip reading the last ids from Kafka (benchmarks on fresh topics). */
  readonly resume?: boolean;
  readonly metrics?: IngestMetrics;
  /**
   * Called before every record is produced (live, backfilled or a book); with a lease it ends the process when the
   * lease may be gone (a process frozen past its session must not produce what it read before the freeze).
   */
  readonly admit?: () => void;
}

export interface IngestionWorker extends Worker {
  readonly metrics: IngestMetrics;
  /** The Binance connection slots (live: slots open and close as symbols are listed and delisted). */
  readonly feeds: readonly Feed[];
  /** This shard's symbols and their re-resolution (SYMBOLS as a rule). */
  readonly symbols: SymbolRefresh;
  /** One feed and session per enabled venue (Coinbase, Gemini), and its books subscription where the venue answers it. */
  readonly venues: readonly { readonly name: string; readonly feed: Feed; readonly router: VenueRouter; readonly books: BooksChannel | undefined }[];
  /** Binance's path: the only one that holds ticks behind holes, backfills and fetches book snapshots. */
  readonly pipeline: BinanceIngest;
  readonly producer: TickProducer;
  readonly http: HttpEndpoint | undefined;
  health(): { ok: boolean; [k: string]: unknown };
}

/** Every topic ingestion writes. */
export function ingestionTopics(config: Config): string[] {
  const t = config.kafka.topics;
  return [t.trade, t.aggTrade, t.bookTicker, t.gap, t.deadLetter, config.books.topic];
}

/** For the one-shot commands (replay, backfill): the ingestion topics ensured, then a connected producer. */
export async function connectProducer(config: Config, log: Logger, clientSuffix: string, metrics: IngestMetrics): Promise<TickProducer> {
  const kafka = createKafka(config, log, clientSuffix);
  await createTopics(kafka, ingestionTopics(config), config);
  const producer = new TickProducer(kafka, { bufferMaxBytes: config.source.producerBufferMaxBytes, lanes: config.source.producerLanes, log, metrics });
  await producer.connect();
  return producer;
}

export async function startIngestion(config: Config, opts: IngestionOptions): Promise<IngestionWorker> {
  const log = opts.log.child({ component: 'ingestion' });
  const src = config.source;
  const metrics = opts.metrics ?? createIngestMetrics({ streams: [...streamNames(src.symbols, src.streamTypes, src.market), 'coinbase', 'gemini'] });
  const kafka = createKafka(config, log, 'ingest');
  const admin = kafka.admin();
  const created = await ensureTopics(admin, ingestionTopics(config), config);
  if (created.length > 0) log.info({ created }, 'created topics');

  const producer = new TickProducer(kafka, { bufferMaxBytes: src.producerBufferMaxBytes, lanes: src.producerLanes, log, metrics, onAck: opts.onAck });
  await producer.connect();
  const admit = opts.admit;
  const sink: RecordSink = admit
    ? {
        produce: (topic, key, record, receiveTimeUs) => {
          admit();
          producer.produce(topic, key, record, receiveTimeUs);
        },
        writable: () => producer.writable(),
      }
    : producer;

  const backfiller = new RestBackfiller({ restUrl: src.restUrl, market: src.market, weightPerMinute: src.restWeightPerMinute, log, metrics });
  // This shard's symbols, read live by the mapper and the books. A delisted symbol stays until its UNSUBSCRIBE is
  // acknowledged (its frames sent before are real trades), or until the next resolution if its connection closed.
  const symbols = new Set(await resolveSymbols(src, backfiller));
  metrics.symbols.set(symbols.size);
  metrics.allowStreams(streamNames([...symbols], src.streamTypes, src.market));
  log.info({ symbols: symbols.size, shard: `${src.shard.index}/${src.shard.count}`, rule: src.symbolRule?.text }, 'symbols of this shard resolved');
  let connections: BinanceConnections;
  const pipeline = new BinanceIngest({
    source: src,
    topics: config.kafka.topics,
    mapper: createBinanceMapper({ market: src.market, maxFrameBytes: src.maxFrameBytes, streamTypes: src.streamTypes, symbols }),
    sink,
    backfiller,
    metrics,
    log,
    // A serverShutdown names no streams: every connection of this process is on the going server's list.
    onServerShutdown: () => connections.feeds.forEach((f) => f.rollover('serverShutdown')),
    books: config.books,
    symbols,
  });

  if (opts.resume ?? true) {
    const types = (['trade', 'aggTrade'] as const).filter((t) => src.streamTypes.includes(t));
    const wanted = new Set(types.flatMap((t) => [...symbols].map((s) => `${t}:${s}`)));
    // Topics created just now are empty: nothing to resume from.
    const topics = types.map((t) => config.kafka.topics[t]).filter((t) => !created.includes(t));
    for (const l of (await readLastIds(kafka, admin, topics, src.market, log, { wanted })).lastIds) {
      if (!wanted.has(`${l.type}:${l.symbol}`)) continue;
      // An id read back is believed only when the exchange knows it: resuming after an id it never issued (a bad record
      // produced earlier) would make every real trade look like a duplicate.
      if ((await pipeline.exists(l.type, l.symbol, l.lastId)) === false) {
        log.warn({ stream: l.type, symbol: l.symbol, lastId: l.lastId }, 'the last id in Kafka is unknown to the exchange: not resuming from it');
        continue;
      }
      pipeline.resumeAfter(l.type, l.symbol, l.lastId);
    }
  }

  // Backpressure: stop reading every socket while the buffer is full in bytes, or in records with the ticks held behind
  // holes; go on once both are below half.
  let paused = false;
  const pressure = () => producer.depth + pipeline.held;
  const checkPressure = () => {
    if (!paused && (producer.full || pressure() >= src.producerBufferMax)) {
      paused = true;
      metrics.paused.set(1);
      log.warn({ depth: producer.depth, bytes: producer.bytes, held: pipeline.held }, 'producer buffer full: pausing the sockets');
      allFeeds().forEach((f) => f.pause());
    } else if (paused && pressure() < src.producerBufferMax / 2 && producer.bytes < src.producerBufferMaxBytes / 2) {
      paused = false;
      metrics.paused.set(0);
      log.info({ depth: producer.depth }, 'producer buffer drained: resuming the sockets');
      allFeeds().forEach((f) => f.resume());
    }
  };
  const pressureTimer = setInterval(() => {
    checkPressure();
    metrics.heldTicks.set(pipeline.held);
  }, 50);

  /** Frames to a router; a full buffer pauses the sockets at once rather than at the next pressure tick. */
  const frames = (to: { frame(text: string, receiveTimeUs: number): void }) => (text: string, receiveTimeUs: number) => {
    to.frame(text, receiveTimeUs);
    if (!paused && (producer.full || producer.depth >= src.producerBufferMax)) checkPressure();
  };
  const slot = { clock: opts.clock ?? systemClock, log, metrics };

  connections = new BinanceConnections({
    ...slot,
    source: src,
    name: 'conn',
    // Binance's 300 attempts per 5 minutes are per IP: shards that may share a machine share them.
    limiter: new AttemptLimiter(Math.max(1, Math.floor(300 / src.shard.count))),
    sink: (carried) => ({
      frame: frames(pipeline),
      disconnected: (reason) => pipeline.disconnected(reason, carried()),
      unsubscribed: (streams) => {
        const wanted = new Set(connections.symbols);
        for (const stream of streams) {
          const symbol = stream.slice(0, stream.indexOf('@')).toUpperCase();
          if (!wanted.has(symbol)) symbols.delete(symbol);
        }
      },
    }),
    paused: () => paused,
  });
  connections.setSymbols([...symbols]);
  const feeds = connections.feeds;
  const refresh = new SymbolRefresh({
    source: src,
    rest: backfiller,
    log,
    metrics,
    apply: (next) => {
      // Delisted by an earlier resolution and not yet let go (its connection closed before the acknowledgement).
      const keep = new Set([...connections.symbols, ...next]);
      for (const s of [...symbols]) if (!keep.has(s)) symbols.delete(s);
      for (const s of next) symbols.add(s);
      metrics.allowStreams(streamNames(next, src.streamTypes, src.market));
      return connections.setSymbols(next);
    },
  });

  // Coinbase and Gemini: one connection each, subscribed by message. They have no 24-hour limit (no rollover: two
  // sockets feeding one session would interleave its books).
  const venues: { name: string; feed: Feed; router: VenueRouter; books: BooksChannel | undefined }[] = [];
  for (const venue of enabledVenues(config)) {
    const vlog = log.child({ venue: venue.name });
    let feed: Feed | undefined;
    const router = venueRouter({
      venue,
      topics: config.kafka.topics,
      books: config.books,
      sink,
      metrics,
      log: vlog,
      deadLetterMaxBytes: src.deadLetterMaxBytes,
      send: (text) => feed?.send(text) ?? false,
    });
    feed = new Feed({
      ...src.timing,
      ...slot,
      name: venue.name,
      wsUrl: venue.wsUrl,
      streams: [],
      subscribe: () => {
        router.subscribing();
        return venue.subscribe();
      },
      maxAgeMs: Number.POSITIVE_INFINITY,
      maxPayloadBytes: config.venues.maxFrameBytes,
      limiter: new AttemptLimiter(),
      sink: {
        frame: frames(router),
        disconnected: (reason) => {
          vlog.warn({ reason }, 'venue connection lost: books wait for new snapshots');
          router.disconnected(reason);
        },
      },
    });
    venues.push({ name: venue.name, feed, router, books: venue.books });
  }
  function allFeeds(): Feed[] {
    return [...feeds, ...venues.map((v) => v.feed)];
  }

  const health = () => {
    const states = allFeeds().map((f) => f.state);
    const kafkaHealth = producer.health;
    // A refused books subscription is a failure even with every socket open: its books would be silently empty.
    const books = venues.flatMap((v) => (v.books ? [[v.name, { channel: v.books.channel, state: v.books.state, reason: v.books.reason }] as const] : []));
    return {
      ok: states.every((s) => s === 'open' || s === 'switching') && kafkaHealth.failures < 3 && books.every(([, b]) => b.state !== 'refused'),
      connections: states,
      books: Object.fromEntries(books),
      producerBufferDepth: producer.depth,
      heldTicks: pipeline.held,
      backfilling: pipeline.backfilling,
      paused,
      kafka: kafkaHealth,
    };
  };
  const http = (opts.http ?? true) ? await startHttpEndpoint({ host: config.http.host, port: opts.httpPort ?? config.http.ports.ingestion, registry: metrics.registry, health }) : undefined;
  connections.start();
  venues.forEach((v) => v.feed.start());
  refresh.start();
  log.info({ symbols: symbols.size, connections: feeds.length, venues: venues.map((v) => v.name), wsUrl: src.wsUrl, httpPort: http?.port }, 'ingestion started');

  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  let stopping: Promise<void> | undefined;
  const stop = (reason: string) =>
    (stopping ??= (async () => {
      log.info({ reason }, 'ingestion stopping');
      clearInterval(pressureTimer);
      refresh.stop();
      await Promise.all(allFeeds().map((f) => f.stop()));
      pipeline.stop();
      venues.forEach((v) => v.router.stop());
      await producer.stop();
      await http?.close();
      await admin.close();
      resolveDone();
    })());
  return { done, stop, metrics, feeds, symbols: refresh, venues, pipeline, producer, http, health };
}
