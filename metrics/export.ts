// Export of bars for one symbol and time range to CSV or Parquet (hyparquet-writer), read page by page in bucket
// order, with a progress bar on stderr. Prices, volumes and VWAP are written as the database's exact decimal text
// (Parquet: UTF8 strings), never rounded through floating point; statistics as doubles.
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parquetWriteFile } from 'hyparquet-writer';
import type { SqlSession } from '../common/db.ts';

export const EXPORT_WIDTHS = { short: 'bars_short', '1m': 'bars_1m', '5m': 'bars_5m', '1h': 'bars_1h' } as const;
export type ExportWidth = keyof typeof EXPORT_WIDTHS;

export interface ExportRequest {
  readonly exchange: string;
  readonly market: string;
  readonly symbol: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly width: ExportWidth;
  readonly format: 'csv' | 'parquet';
  readonly path: string;
  readonly pageSize?: number;
}

const DECIMALS = ['open', 'high', 'low', 'close', 'volume', 'quote_volume', 'vwap', 'taker_buy_volume', 'taker_buy_quote_volume', 'max_move'] as const;
const INTEGERS = ['trade_count', 'first_trade_id', 'last_trade_id', 'return_count'] as const;
const DOUBLES = ['volatility', 'price_stddev', 'max_move_bps'] as const;
export const EXPORT_COLUMNS = ['exchange', 'market', 'symbol', 'bucket', ...DECIMALS, ...INTEGERS, ...DOUBLES] as const;

type Row = Record<string, unknown>;

/** A progress bar for a known total, redrawn in place on a terminal, as a line every 10 % otherwise. */
export function progressBar(total: number, out: NodeJS.WriteStream = process.stderr, label = 'bars'): (done: number) => void {
  let lastDecile = -1;
  return (done: number) => {
    const frac = total === 0 ? 1 : Math.min(1, done / total);
    const bar = `[${'#'.repeat(Math.round(frac * 30)).padEnd(30, '.')}] ${(frac * 100).toFixed(0).padStart(3)}% ${done}/${total} ${label}`;
    if (out.isTTY) out.write(`\r${bar}${frac === 1 ? '\n' : ''}`);
    else if (Math.floor(frac * 10) > lastDecile) {
      lastDecile = Math.floor(frac * 10);
      out.write(`${bar}\n`);
    }
  };
}

const csvCell = (v: unknown): string => {
  if (v === null || v === undefined) return '';
  const s = v instanceof Date ? v.toISOString() : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** Writes the bars; returns how many. `onProgress(done)` is called after each page. */
export async function exportBars(db: SqlSession, req: ExportRequest, onProgress?: (done: number, total: number) => void): Promise<number> {
  const view = EXPORT_WIDTHS[req.width];
  const args = [req.exchange, req.market, req.symbol, new Date(req.fromMs).toISOString(), new Date(req.toMs).toISOString()];
  const where = 'exchange = $1 AND market = $2 AND symbol = $3 AND bucket >= $4::timestamptz AND bucket < $5::timestamptz';
  const total = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${view} WHERE ${where}`, args)).rows[0]?.n ?? 0);
  const pageSize = req.pageSize ?? 10_000;
  const csv = req.format === 'csv' ? createWriteStream(req.path) : null;
  const columns: Record<string, unknown[]> = Object.fromEntries(EXPORT_COLUMNS.map((c) => [c, []]));
  if (csv) csv.write(`${EXPORT_COLUMNS.join(',')}\n`);
  let done = 0;
  let after = new Date(req.fromMs - 1).toISOString();
  onProgress?.(0, total);
  for (;;) {
    // Keyset pagination on the bucket (one symbol: the bucket is unique).
    const page = (
      await db.query<Row>(
        `SELECT ${EXPORT_COLUMNS.join(', ')} FROM ${view} WHERE ${where} AND bucket > $6::timestamptz ORDER BY bucket LIMIT ${pageSize}`,
        [...args, after],
      )
    ).rows;
    if (page.length === 0) break;
    for (const r of page) {
      if (csv) {
        if (!csv.write(`${EXPORT_COLUMNS.map((c) => csvCell(r[c])).join(',')}\n`)) await once(csv, 'drain');
      } else {
        for (const c of EXPORT_COLUMNS) {
          const v = r[c];
          columns[c]!.push(
            v === null || v === undefined ? null
            : c === 'bucket' ? new Date(v as string)
            : (INTEGERS as readonly string[]).includes(c) ? BigInt(String(v))
            : (DOUBLES as readonly string[]).includes(c) ? Number(v)
            : String(v),
          );
        }
      }
    }
    done += page.length;
    after = new Date(page[page.length - 1]!.bucket as string).toISOString();
    onProgress?.(done, total);
    if (page.length < pageSize) break;
  }
  if (csv) {
    csv.end();
    await once(csv, 'finish');
  } else {
    parquetWriteFile({
      filename: req.path,
      columnData: EXPORT_COLUMNS.map((c) => ({
        name: c,
        data: columns[c]!,
        type: c === 'bucket' ? 'TIMESTAMP' : (INTEGERS as readonly string[]).includes(c) ? 'INT64' : (DOUBLES as readonly string[]).includes(c) ? 'DOUBLE' : 'STRING',
      })),
    });
  }
  return done;
}
