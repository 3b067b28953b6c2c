// Binary COPY against real PostgreSQL: the same ticks COPY'd in text (TickTextEncoder, the reference) and in binary
// (the writer's own runs: fast path and full path, through writeBatch and its staging merge) must store the same rows,
// every column compared as PostgreSQL prints it (numerics with their scale, timestamps to the µs).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, pgSession } from '../common/db.ts';
import { encodeRecord, type Tick, type TickType, type Trade } from '../common/records.ts';
import { compareDecimals } from '../common/tick-schema.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing, mixedTicks } from '../test/capture-ticks.ts';
import { freshDatabase, missing, testConfig, testLog } from '../test/services.ts';
import { COPY_BINARY_HEADER, CopyBinaryEncoder } from './copy-binary.ts';
import { copyIn, copySql } from './copy.ts';
import { COPY_FORMAT, TABLE_OF, type TickTable } from './copy-rows.ts';
import { TickTextEncoder } from './tick-text.fixture.ts';
import { writeBatch } from './write-batch.fixture.ts';
import { familyCodec } from './families.ts';
import { CopyRowBuffer } from './tick-rows.ts';

const skip = (await missing('postgres')) ?? capturesMissing();

const TICK_TYPES: readonly TickType[] = ['trade', 'aggTrade', 'bookTicker'];

/** Recorded ticks, plus edge cases: decimals of every shape, the largest ids, another venue. */
function ticks(): Tick[] {
  const out = mixedTicks(30_000);
  const edges = ['0', '0.00000000', '0.000000000000000001', '12345678901234567890.123456789012345678', '00012.34000', '10000', '1.10'];
  const positive = ['0.000000000000000001', '99999999999999999999', '00012.34000', '10000', '1.10', '61837.63000000', '0.0001'];
  for (const [i, t] of out.slice(0, 400).entries()) {
    const q = edges[i % edges.length]!;
    const p = positive[i % positive.length]!;
    const id = Number.MAX_SAFE_INTEGER - i;
    let e: Tick;
    if (t.type === 'trade') e = { ...t, price: p, quantity: q, tradeId: id };
    else if (t.type === 'aggTrade') e = { ...t, price: p, quantity: q, aggId: id, firstTradeId: id - 5, lastTradeId: id };
    else {
      // Every shape on both sides, the lower of the two as the bid (a crossed book is no quote).
      const [bid, ask] = [p, positive[(i + 3) % positive.length]!].sort(compareDecimals) as [string, string];
      e = { ...t, bidPrice: bid, bidQty: q, askPrice: ask, askQty: edges[(i + 2) % edges.length]!, updateId: id };
    }
    // Every fourth: another venue (declined by the fast path, so the full path writes it).
    if (i % 4 === 0) e = { ...e, exchange: 'coinbase', market: 'spot', symbol: 'BTC-USD' } as Tick;
    out.push(e);
  }
  return out;
}

describe.skipIf(skip)('binary COPY stores what text COPY stores (real PostgreSQL)', () => {
  let drop: () => Promise<void>;
  let pool: pg.Pool;
  const all = skip ? [] : ticks();
  const byType = (type: TickType) => all.filter((t) => t.type === type);

  beforeAll(async () => {
    const db = await freshDatabase('copy_binary');
    drop = db.drop;
    const config = await testConfig({ DATABASE_URL: db.url });
    const client = createClient(config, 'copy-binary-test-migrate');
    await client.connect();
    await migrate(pgSession(client), config, testLog);
    await client.end();
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    for (const table of Object.values(TABLE_OF)) await pool.query(`CREATE TABLE ${table}_text (LIKE ${table} INCLUDING ALL)`);
  });
  afterAll(async () => {
    await pool?.end();
    await drop?.();
  });

  /** The writer's binary rows of these ticks: records as ingestion writes them, through the family's run. */
  function writerRows(type: TickType, list: readonly Tick[]): { rows: Buffer; count: number } {
    const run = familyCodec(type).run(list.length, 1024);
    for (const t of list) run.add(encodeRecord(t), undefined);
    const { tables } = run.finish();
    return { rows: tables[0]!.rows, count: tables[0]!.count };
  }

  async function copyInto(table: TickTable, into: string, format: 'text' | 'binary', rows: Buffer): Promise<number> {
    const client = await pool.connect();
    try {
      return await copyIn(client, copySql(table, into, format), rows, format);
    } finally {
      client.release();
    }
  }

  /** Rows of the binary table not in the text one and the other way round, each row as PostgreSQL prints it. */
  async function differences(binary: string, text: string): Promise<{ binaryOnly: string[]; textOnly: string[]; binary: number; text: number }> {
    const q = async (sql: string) => (await pool.query<{ r: string }>(sql)).rows.map((x) => x.r);
    const count = async (t: string) => Number((await pool.query<{ n: string }>(`SELECT count(*)::text n FROM ${t}`)).rows[0]!.n);
    return {
      binaryOnly: await q(`SELECT x::text r FROM ${binary} x EXCEPT ALL SELECT y::text FROM ${text} y`),
      textOnly: await q(`SELECT y::text r FROM ${text} y EXCEPT ALL SELECT x::text FROM ${binary} x`),
      binary: await count(binary),
      text: await count(text),
    };
  }

  it('the tick tables are COPY binary', () => {
    expect(Object.values(TABLE_OF).map((t) => COPY_FORMAT[t])).toEqual(['binary', 'binary', 'binary']);
  });

  it.each(TICK_TYPES)('%s: every column equal as text, numerics with the exchange scale', async (type) => {
    const table = TABLE_OF[type];
    const list = byType(type);
    const half = Math.floor(list.length / 2);
    const first = writerRows(type, list.slice(0, half));
    expect(first.count).toBe(half);
    const claim = { groupId: 'g', topic: table, partition: 0 };
    const a = await writeBatch(pool, table, first.rows, first.count, { ...claim, expected: null, next: BigInt(half) });
    expect(a).toMatchObject({ outcome: 'written', path: 'copy', rowsInserted: half });
    // The second batch repeats 100 stored rows: its COPY hits the unique key and the staging merge (binary too) takes over.
    const second = writerRows(type, list.slice(half - 100));
    const b = await writeBatch(pool, table, second.rows, second.count, { ...claim, expected: BigInt(half), next: BigInt(list.length) });
    expect(b).toMatchObject({ outcome: 'written', path: 'merge', rowsInserted: list.length - half });

    await copyInto(table, `${table}_text`, 'text', Buffer.from(new TickTextEncoder().rows(list)));
    const diff = await differences(table, `${table}_text`);
    expect(diff).toEqual({ binaryOnly: [], textOnly: [], binary: list.length, text: list.length });

    // The edge decimals really are there, printed as the exchange wrote them (leading zeros aside).
    const col = type === 'bookTicker' ? 'bid_qty' : 'quantity';
    const texts = new Set((await pool.query<{ q: string }>(`SELECT DISTINCT ${col}::text q FROM ${table}`)).rows.map((r) => r.q));
    for (const q of ['0', '0.00000000', '0.000000000000000001', '12345678901234567890.123456789012345678', '12.34000', '10000', '1.10']) {
      expect(texts.has(q), `${table}.${col} ${q}`).toBe(true);
    }
    // And the price columns compared one by one, as the issue asks (the row text above covers them too).
    const prices = type === 'bookTicker' ? ['bid_price', 'bid_qty', 'ask_price', 'ask_qty'] : ['price', 'quantity'];
    const key = { trade: 'trade_id', aggTrade: 'agg_id', bookTicker: 'update_id' }[type];
    const unequal = await pool.query(
      `SELECT count(*)::int n, count(y.*)::int matched FROM ${table} x LEFT JOIN ${table}_text y USING (exchange, market, symbol, time, ${key})
        WHERE y.${key} IS NULL OR ${prices.map((c) => `x.${c}::text <> y.${c}::text`).join(' OR ')}`,
    );
    expect(unequal.rows[0]).toEqual({ n: 0, matched: 0 });
  });

  it('stores text that text COPY has to escape, and non-ASCII, as text COPY does', async () => {
    const base: Trade = {
      type: 'trade', exchange: 'coinbase', market: 'spot', symbol: 'BTC-USD', receiveTimeUs: 1723161254087896, tradeId: 1,
      price: '61837.63000000', quantity: '0.02000000', buyerIsMaker: true, side: 'sell', exchangeTimeMs: 1723161255342, eventTimeMs: 1723161255343,
    };
    const odd = ['tab\there', 'back\\slash', '\\N', 'new\nline\rcr', 'é€😀', ''].map((symbol, i) => ({ ...base, symbol, tradeId: i }));
    await pool.query('CREATE TABLE odd_bin (LIKE trades INCLUDING ALL); CREATE TABLE odd_text (LIKE trades INCLUDING ALL)');
    const out = new CopyRowBuffer(64, odd.length);
    const enc = new CopyBinaryEncoder();
    for (const t of odd) enc.row(t, out);
    expect(await copyInto('trades', 'odd_bin', 'binary', Buffer.from(out.bytes()))).toBe(odd.length);
    expect(await copyInto('trades', 'odd_text', 'text', Buffer.from(new TickTextEncoder().rows(odd)))).toBe(odd.length);
    expect(await differences('odd_bin', 'odd_text')).toEqual({ binaryOnly: [], textOnly: [], binary: odd.length, text: odd.length });
    const symbols = (await pool.query<{ symbol: string }>('SELECT symbol FROM odd_bin ORDER BY trade_id')).rows.map((r) => r.symbol);
    expect(symbols).toEqual(odd.map((t) => t.symbol));
  });

  it('rejects a stream without the PGCOPY header (the framing is checked, not ignored)', async () => {
    const out = new CopyRowBuffer(64, 1);
    new CopyBinaryEncoder().row(byType('trade')[0]!, out);
    const client = await pool.connect();
    try {
      await expect(copyIn(client, copySql('trades', 'trades_text', 'text'), Buffer.from(out.bytes()), 'binary')).rejects.toThrow();
    } finally {
      client.release();
    }
    expect(COPY_BINARY_HEADER.subarray(0, 6).toString()).toBe('PGCOPY');
  });
});
