// `tickwatch export` against real PostgreSQL: the bars of the recorded spot BTCUSDT minutes written to CSV and Parquet
// (read back with hyparquet) equal the bars_1m rows digit for digit, and the progress bar reaches 100 %.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { asyncBufferFromFile, parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgSession, type SqlSession } from '../common/db.ts';
import { migrate } from '../sql/migrate.ts';
import { capturesMissing, loadCaptureTicks } from '../test/capture-ticks.ts';
import { freshDatabaseClient, missing, testConfig, testLog, type ConnectedDatabase } from '../test/services.ts';
import { exportCommand } from './cli.ts';
import { EXPORT_COLUMNS } from './export.ts';
import { Refresher } from './refresher.ts';
import { insertTrades } from './replay.ts';

const skip = capturesMissing() ?? (await missing('postgres'));

describe.skipIf(skip)('export', () => {
  let fresh: ConnectedDatabase;
  let db: SqlSession;
  const dir = mkdtempSync(join(tmpdir(), 'tickwatch-export-'));

  beforeAll(async () => {
    fresh = await freshDatabaseClient('metrics_export');
    db = pgSession(fresh.client);
    await migrate(db, await testConfig({ DATABASE_URL: fresh.url }), testLog);
    await insertTrades(db, loadCaptureTicks().trades.filter((t) => t.symbol === 'BTCUSDT' && t.market === 'spot'));
    await new Refresher(db, 10_000).runOnce(Date.now());
  });

  afterAll(async () => {
    await fresh?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const run = async (out: string, extra: Record<string, string> = {}) => {
    const config = await testConfig({ DATABASE_URL: fresh.url });
    const code = await exportCommand.run({
      config, log: testLog, positionals: [],
      values: { symbol: 'btcusdt', market: 'spot', exchange: 'binance', width: '1m', from: '2024-08-08T23:55:00Z', to: '2024-08-09T00:05:00Z', out, ...extra },
    });
    expect(code).toBe(0);
  };

  it('writes CSV and Parquet equal to the bars, to the last decimal', async () => {
    const rows = (await db.query(`SELECT ${EXPORT_COLUMNS.join(', ')} FROM bars_1m WHERE symbol = 'BTCUSDT' AND bucket >= '2024-08-08T23:55:00Z' AND bucket < '2024-08-09T00:05:00Z' ORDER BY bucket`)).rows;
    expect(rows).toHaveLength(10);
    const progress: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (progress.push(String(s)), true)) as typeof process.stderr.write;
    try {
      await run(join(dir, 'bars.csv'));
      await run(join(dir, 'bars.parquet'));
    } finally {
      process.stderr.write = write;
    }
    expect(progress.some((p) => p.includes('100% 10/10 bars'))).toBe(true);

    const [header, ...lines] = readFileSync(join(dir, 'bars.csv'), 'utf8').trimEnd().split('\n');
    expect(header).toBe(EXPORT_COLUMNS.join(','));
    expect(lines).toHaveLength(10);
    lines.forEach((line, i) => {
      const cells = line.split(',');
      const r = rows[i]!;
      expect(cells[EXPORT_COLUMNS.indexOf('bucket')]).toBe((r.bucket as Date).toISOString());
      for (const c of ['open', 'close', 'volume', 'quote_volume', 'vwap', 'trade_count', 'volatility'] as const) expect(cells[EXPORT_COLUMNS.indexOf(c)], c).toBe(String(r[c]));
    });

    const objects = await parquetReadObjects({ file: await asyncBufferFromFile(join(dir, 'bars.parquet')) });
    expect(objects).toHaveLength(10);
    objects.forEach((o, i) => {
      const r = rows[i]!;
      expect(new Date(o.bucket as Date).getTime()).toBe((r.bucket as Date).getTime());
      for (const c of ['open', 'high', 'low', 'close', 'volume', 'quote_volume', 'vwap', 'taker_buy_volume'] as const) expect(o[c], c).toBe(String(r[c]));
      expect(o.trade_count).toBe(BigInt(String(r.trade_count)));
      expect(o.volatility).toBe(Number(r.volatility));
    });
  });

  it('rejects bad flags with a message naming them', async () => {
    const config = await testConfig({ DATABASE_URL: fresh.url });
    const write = process.stderr.write.bind(process.stderr);
    let text = '';
    process.stderr.write = ((s: string) => ((text += s), true)) as typeof process.stderr.write;
    try {
      expect(await exportCommand.run({ config, log: testLog, positionals: [], values: { width: '2m', from: 'x', exchange: 'binance' } })).toBe(1);
      // Hostile flags: an inherited property name as the width, the first and last instants a Date can hold.
      const hostile = { symbol: 'btcusdt', exchange: 'binance', width: 'constructor', from: '-271821-04-20', to: '+275760-09-13', out: '/dev/null' };
      expect(await exportCommand.run({ config, log: testLog, positionals: [], values: hostile })).toBe(1);
    } finally {
      process.stderr.write = write;
    }
    expect(text).toContain('--symbol is required');
    expect(text).toContain('--width must be one of');
    expect(text.match(/--width must be one of/g)).toHaveLength(2);
    expect(text).toContain('--from must be a time between 2000 and 2100');
    expect(text).toContain('--to must be a time between 2000 and 2100');
  });
});
