// `npm run bench:storage`: the on-disk size of a day of ticks on TimescaleDB before and after compression, beside the
// same ticks in plain PostgreSQL tables, measured in this run. The day is synthesized from the recorded Binance
// captures (spot BTCUSDT and ETHUSDT, USD-M BTCUSDT; trades and book tickers): each stream's recording is repeated back
// to back from 2024-08-09 00:00 UTC, every repeat shifted by the recording's own length (ids by its id range), so each
// stream keeps its recorded rate. The ticks go in through the writer's transaction (writeBatch), a minute at a time,
// into a fresh TimescaleDB database (TIMESCALEDB=on: hypertables, 1-day chunks; no compression or retention policy, so
// nothing moves meanwhile) and a fresh plain one (TIMESCALEDB=off); then VACUUM ANALYZE, hypertable_size, compress_chunk
// on every chunk, hypertable_size and chunk_compression_stats again. Target: compressed ticks at most 1/5 of their
// uncompressed size.
// Flags (environment): STORAGE_HOURS (default 6; 24 writes the whole day). Fewer than 24 hours are a sample of the day:
// the sizes are measured on it and the per-day figures extrapolated linearly (labelled so). Needs DATABASE_URL on a
// server that preloads TimescaleDB.
import pg from 'pg';
import { loadConfig } from '../common/config.ts';
import { pgSession } from '../common/db.ts';
import { createLogger } from '../common/log.ts';
import { rowTimeMs, type BookTicker, type Tick, type Trade } from '../common/records.ts';
import { CopyBinaryEncoder } from '../consumer/copy-binary.ts';
import { writeBatch } from '../consumer/write-batch.fixture.ts';
import type { TickTable } from '../consumer/copy-rows.ts';
import { CopyRowBuffer } from '../consumer/tick-rows.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { freshDatabase } from '../test/services.ts';
import { cpuSecondsOf } from '../stack/supervisor.ts';

if (capturesMissing()) process.exit(0);
if (!process.env.DATABASE_URL) {
  console.error('needs DATABASE_URL: eval "$(bash scripts/services.sh env)"');
  process.exit(1);
}
const HOURS = Math.min(24, Number(process.env.STORAGE_HOURS ?? 6));
if (!(HOURS > 0)) throw new Error(`STORAGE_HOURS must be a number of hours above 0, up to 24: ${process.env.STORAGE_HOURS}`);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn', 'bench-storage');
const DAY_MS = 24 * 3_600_000;
const DAY_START = Date.UTC(2024, 7, 9); // one 1-day chunk per table (chunks are aligned to whole days)
const END = DAY_START + HOURS * 3_600_000;
const WINDOW_MS = 60_000;
const TABLES = ['trades', 'book_tickers'] as const;
const say = (s: string) => process.stdout.write(`${s}\n`);
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const mb = (bytes: number) => `${(bytes / 2 ** 20).toLocaleString('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })} MB`;

// --- the day: each recorded stream repeated at its own rate ------------------------------------------------------------

const idOf = (t: Trade | BookTicker) => (t.type === 'trade' ? t.tradeId : t.updateId);

/** Shifts a tick by `ms` and its id by `id`: one repeat of its stream. */
function shifted<T extends Trade | BookTicker>(t: T, ms: number, id: number): T {
  if (t.type === 'trade') {
    return { ...t, tradeId: t.tradeId + id, exchangeTimeMs: t.exchangeTimeMs + ms, eventTimeMs: t.eventTimeMs + ms, receiveTimeUs: t.receiveTimeUs + ms * 1000 };
  }
  return {
    ...t,
    updateId: t.updateId + id,
    exchangeTimeMs: t.exchangeTimeMs === null ? null : t.exchangeTimeMs + ms,
    eventTimeMs: t.eventTimeMs === null ? null : t.eventTimeMs + ms,
    receiveTimeUs: t.receiveTimeUs + ms * 1000,
  };
}

/** One stream's recording, replayed back to back from DAY_START; `take` hands out its ticks in time order. */
class RepeatedStream<T extends Trade | BookTicker> {
  private readonly period: number;
  private readonly idSpan: number;
  private repeat = 0;
  private next = 0;
  readonly perSecond: number;

  constructor(
    readonly key: string,
    private readonly ticks: readonly T[],
  ) {
    const first = rowTimeMs(ticks[0]!);
    const span = rowTimeMs(ticks.at(-1)!) - first;
    // One mean interval between the last tick of a repeat and the first of the next: the recorded rate, no overlap.
    this.period = span + Math.max(1, Math.round(span / Math.max(1, ticks.length - 1)));
    this.perSecond = ticks.length / (this.period / 1000);
    const ids = ticks.map(idOf);
    this.idSpan = Math.max(...ids) - Math.min(...ids) + 1;
  }

  private timeOf(repeat: number, i: number): number {
    return DAY_START + rowTimeMs(this.ticks[i]!) - rowTimeMs(this.ticks[0]!) + repeat * this.period;
  }

  /** The ticks before `untilMs` not handed out yet. */
  take(untilMs: number, out: T[]): void {
    while (this.timeOf(this.repeat, this.next) < untilMs) {
      const shift = DAY_START - rowTimeMs(this.ticks[0]!) + this.repeat * this.period;
      out.push(shifted(this.ticks[this.next]!, shift, this.repeat * this.idSpan));
      if (++this.next === this.ticks.length) {
        this.next = 0;
        this.repeat++;
      }
    }
  }
}

function streamsOf<T extends Trade | BookTicker>(ticks: readonly T[]): RepeatedStream<T>[] {
  const byStream = new Map<string, T[]>();
  for (const t of ticks) {
    const key = `${t.market} ${t.symbol}`;
    let l = byStream.get(key);
    if (!l) byStream.set(key, (l = []));
    l.push(t);
  }
  return [...byStream].map(([key, l]) => new RepeatedStream(key, [...l].sort((a, b) => rowTimeMs(a) - rowTimeMs(b) || idOf(a) - idOf(b))));
}

// --- the databases ----------------------------------------------------------------------------------------------------

interface Target {
  readonly name: string;
  readonly url: string;
  readonly pools: Record<(typeof TABLES)[number], pg.Pool>;
  readonly offsets: Record<(typeof TABLES)[number], bigint | null>;
  readonly drop: () => Promise<void>;
}

async function target(name: string, timescaledb: 'on' | 'off'): Promise<Target> {
  const fresh = await freshDatabase(`bench_storage_${timescaledb === 'on' ? 'ts' : 'plain'}`);
  // The day is in 2024: a retention policy would drop it, a compression policy would compress it while it goes in.
  const config = loadConfig({ DATABASE_URL: fresh.url, TIMESCALEDB: timescaledb, TICK_RETENTION: 'none', TICK_COMPRESS_AFTER: 'none', LOG_LEVEL: 'warn' });
  const client = new pg.Client({ connectionString: fresh.url });
  await client.connect();
  const migrated = await migrate(pgSession(client), config, log);
  await client.end();
  if (migrated.timescaledb !== (timescaledb === 'on')) throw new Error(`${name}: TIMESCALEDB=${timescaledb} but migrate gave timescaledb=${migrated.timescaledb}`);
  const pool = () => new pg.Pool({ connectionString: fresh.url, max: 1, application_name: `bench-storage-${name}` });
  return { name, url: fresh.url, pools: { trades: pool(), book_tickers: pool() }, offsets: { trades: null, book_tickers: null }, drop: fresh.drop };
}

const encoder = new CopyBinaryEncoder();
const BATCH = loadConfig(process.env).writer.batchSize;

/** The ticks as the writer stores them: BATCH_SIZE rows per transaction with their offset claim. */
async function write(db: Target, table: TickTable & (typeof TABLES)[number], ticks: readonly Tick[]): Promise<void> {
  for (let i = 0; i < ticks.length; i += BATCH) {
    const slice = ticks.slice(i, i + BATCH);
    const out = new CopyRowBuffer(slice.length * 200, slice.length);
    for (const t of slice) encoder.row(t, out);
    const expected = db.offsets[table];
    const next = (expected ?? 0n) + BigInt(slice.length);
    const r = await writeBatch(db.pools[table], table, out.bytes(), slice.length, { groupId: 'bench', topic: table, partition: 0, expected, next });
    if (r.outcome !== 'written' || r.rowsInserted !== slice.length) {
      throw new Error(`${db.name} ${table} batch at offset ${expected}: ${r.outcome === 'written' ? `${r.rowsInserted} of ${slice.length} rows` : r.outcome}`);
    }
    db.offsets[table] = next;
  }
}

interface Sizes {
  rows: number;
  table: number;
  index: number;
  total: number;
}

/** Heap (with TOAST), index and total bytes of a tick table; a hypertable's are summed over its chunks. */
async function sizes(c: pg.Client, table: string, hypertable: boolean): Promise<Sizes> {
  const rows = Number((await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${table}`)).rows[0]!.n);
  const sql = hypertable
    ? 'SELECT table_bytes + coalesce(toast_bytes, 0) AS t, index_bytes AS i, total_bytes AS total FROM hypertable_detailed_size($1::regclass)'
    : `SELECT pg_table_size($1::regclass) AS t, pg_indexes_size($1::regclass) AS i, pg_total_relation_size($1::regclass) AS total`;
  const r = (await c.query<{ t: string; i: string; total: string }>(sql, [table])).rows[0]!;
  return { rows, table: Number(r.t), index: Number(r.i), total: Number(r.total) };
}

// --- main -------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const captures = loadCaptureTicks();
  const trades = streamsOf(captures.trades);
  const quotes = streamsOf(captures.bookTickers);
  const perDay = (streams: RepeatedStream<Trade | BookTicker>[]) => streams.reduce((n, s) => n + s.perSecond, 0) * 86_400;
  const sample = HOURS < 24;
  say(`tickwatch bench:storage — ${HOURS} h of ticks from ${new Date(DAY_START).toISOString()}${sample ? ` (a ${((HOURS / 24) * 100).toFixed(1)} % sample of the day: per-day sizes below are extrapolated x ${(24 / HOURS).toFixed(2)})` : ' (the whole day)'}`);
  say(`   streams at their recorded rates: ${[...trades.map((s) => `trades ${s.key} ${s.perSecond.toFixed(1)}/s`), ...quotes.map((s) => `bookTicker ${s.key} ${s.perSecond.toFixed(1)}/s`)].join(', ')}`);
  say(`   a day at these rates: ${int(perDay(trades))} trades, ${int(perDay(quotes))} book tickers; BATCH_SIZE=${BATCH}`);

  const ts = await target('timescaledb', 'on');
  const plain = await target('plain', 'off');
  const dbs = [ts, plain];
  try {
    const t0 = performance.now();
    let written = { trades: 0, book_tickers: 0 };
    for (let w = DAY_START; w < END; w += WINDOW_MS) {
      const until = Math.min(END, w + WINDOW_MS);
      const tr: Trade[] = [];
      const qs: BookTicker[] = [];
      for (const s of trades) s.take(until, tr);
      for (const s of quotes) s.take(until, qs);
      tr.sort((a, b) => a.exchangeTimeMs - b.exchangeTimeMs);
      qs.sort((a, b) => rowTimeMs(a) - rowTimeMs(b));
      await Promise.all(dbs.flatMap((db) => [write(db, 'trades', tr), write(db, 'book_tickers', qs)]));
      written = { trades: written.trades + tr.length, book_tickers: written.book_tickers + qs.length };
      if ((w - DAY_START) % 3_600_000 === 3_600_000 - WINDOW_MS) {
        process.stderr.write(`bench:storage: ${((until - DAY_START) / 3_600_000).toFixed(0)} of ${HOURS} h written (${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
      }
    }
    const writeSeconds = (performance.now() - t0) / 1000;
    say(`   written: ${int(written.trades)} trades, ${int(written.book_tickers)} book tickers into each database in ${writeSeconds.toFixed(0)} s (both at once, writeBatch)`);
    for (const db of dbs) for (const p of Object.values(db.pools)) await p.end();

    const tsc = new pg.Client({ connectionString: ts.url, application_name: 'bench-storage-compress' });
    const plc = new pg.Client({ connectionString: plain.url });
    await tsc.connect();
    await plc.connect();
    try {
      for (const c of [tsc, plc]) await c.query(`VACUUM ANALYZE ${TABLES.join(', ')}`);
      const before: Record<string, Sizes> = {};
      const plainSizes: Record<string, Sizes> = {};
      for (const t of TABLES) {
        before[t] = await sizes(tsc, t, true);
        plainSizes[t] = await sizes(plc, t, false);
      }
      const slices = Number((await plc.query<{ b: string }>(`SELECT (pg_total_relation_size('trade_slices') + pg_total_relation_size('quote_slices'))::text AS b`)).rows[0]!.b);

      const pid = (await tsc.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const cpu0 = cpuSecondsOf(pid) ?? NaN;
      const c0 = performance.now();
      let chunks = 0;
      for (const t of TABLES) {
        const r = await tsc.query(`SELECT compress_chunk(c) FROM show_chunks($1::regclass) c`, [t]);
        chunks += r.rowCount ?? 0;
      }
      const compressSeconds = (performance.now() - c0) / 1000;
      const compressCpu = (cpuSecondsOf(pid) ?? NaN) - cpu0;

      const after: Record<string, Sizes> = {};
      const stats: Record<string, { before: number; after: number; chunks: number }> = {};
      for (const t of TABLES) {
        after[t] = await sizes(tsc, t, true);
        const s = (
          await tsc.query<{ b: string; a: string; n: string }>(
            `SELECT sum(before_compression_total_bytes)::text AS b, sum(after_compression_total_bytes)::text AS a, count(*)::text AS n
               FROM chunk_compression_stats($1::regclass) WHERE compression_status = 'Compressed'`,
            [t],
          )
        ).rows[0]!;
        stats[t] = { before: Number(s.b), after: Number(s.a), chunks: Number(s.n) };
      }
      say(`   compress_chunk on ${chunks} chunks: ${compressSeconds.toFixed(1)} s, ${compressCpu.toFixed(1)} CPU s of its backend`);

      const sum = (m: Record<string, Sizes>, k: keyof Sizes) => TABLES.reduce((n, t) => n + m[t]![k], 0);
      const perDayOf = (bytes: number) => (bytes * 24) / HOURS;
      const header = ['', 'rows', 'plain PostgreSQL', 'TimescaleDB before', 'TimescaleDB after', 'after / before', 'bytes/row before -> after'];
      const rows: string[][] = [];
      for (const t of [...TABLES, 'total'] as const) {
        const pick = (m: Record<string, Sizes>, k: keyof Sizes) => (t === 'total' ? sum(m, k) : m[t]![k]);
        const n = pick(before, 'rows');
        const b = pick(before, 'total');
        const a = pick(after, 'total');
        rows.push([
          `${t} (measured)`,
          int(n),
          `${mb(pick(plainSizes, 'total'))} (${mb(pick(plainSizes, 'index'))} index)`,
          `${mb(b)} (${mb(pick(before, 'index'))} index)`,
          mb(a),
          (a / b).toFixed(3),
          `${(b / n).toFixed(0)} -> ${(a / n).toFixed(1)}`,
        ]);
      }
      const label = sample ? `per day (extrapolated x ${(24 / HOURS).toFixed(2)})` : 'per day (measured)';
      rows.push([label, int(perDayOf(sum(before, 'rows'))), mb(perDayOf(sum(plainSizes, 'total'))), mb(perDayOf(sum(before, 'total'))), mb(perDayOf(sum(after, 'total'))), '', '']);
      const widths = header.map((_, c) => Math.max(...[header, ...rows].map((r) => r[c]!.length)));
      const line = (r: string[]) => `  ${r.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ')}`;

      say(`\non-disk size of the ticks (hypertable_size / pg_total_relation_size: heap, TOAST and indexes), after VACUUM ANALYZE`);
      say(line(header));
      for (const r of rows) say(line(r));
      say(`  plain PostgreSQL also keeps per-second slices for the refresh: trade_slices + quote_slices ${mb(slices)} measured${sample ? `, ${mb(perDayOf(slices))} per day extrapolated` : ''}`);
      say(`  chunk_compression_stats (compressed chunks): ${TABLES.map((t) => `${t} ${stats[t]!.chunks} chunk(s) ${mb(stats[t]!.before)} -> ${mb(stats[t]!.after)} (${(stats[t]!.after / stats[t]!.before).toFixed(3)})`).join('; ')}`);

      const ratio = sum(after, 'total') / sum(before, 'total');
      const statsRatio = TABLES.reduce((n, t) => n + stats[t]!.after, 0) / TABLES.reduce((n, t) => n + stats[t]!.before, 0);
      say(`\ntarget: compressed ticks at most 1/5 (0.200) of their uncompressed size`);
      say(`  hypertable_size after / before ${ratio.toFixed(3)} (chunk_compression_stats ${statsRatio.toFixed(3)}): ${ratio <= 0.2 ? 'met' : 'NOT met'}`);
      if (sample) say(`  measured on ${HOURS} h of the day (compression works per stream on batches of up to 1,000 rows, so the ratio should barely depend on the length); the per-day sizes are that sample x ${(24 / HOURS).toFixed(2)}, not measured`);
    } finally {
      await tsc.end();
      await plc.end();
    }
  } finally {
    for (const db of dbs) await db.drop();
  }
}

main()
  .catch((err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(() => process.exit());
