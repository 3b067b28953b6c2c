// `tickwatch metrics` (the metrics worker) and `tickwatch export` (bars to CSV or Parquet).
import type { Command } from '../common/cli.ts';
import { createClient, pgSession } from '../common/db.ts';
import { runWorker } from '../common/lifecycle.ts';
import { EXPORT_WIDTHS, exportBars, progressBar, type ExportWidth } from './export.ts';
import { startMetricsWorker } from './worker.ts';

export const metricsCommand: Command = {
  name: 'metrics',
  summary: 'refresh bars and quote metrics as buckets close, publish bars, evaluate anomaly rules, send alert mail',
  usage: [
    'usage: tickwatch metrics',
    '',
    'Runs the metrics worker against DATABASE_URL (run `tickwatch migrate` first) and Kafka: refreshes each bucket',
    'ALLOWED_LATENESS_SECONDS after it closes and every bucket touched by late or backfilled ticks, publishes closed bars',
    'to TOPIC_BARS and anomaly firings to TOPIC_ALERTS, mails alerts through SMTP_*. Serves /metrics and /healthz on',
    'METRICS_HTTP_PORT.',
  ].join('\n'),
  options: {},
  async run({ config, log }) {
    return runWorker(log, () => startMetricsWorker(config, log));
  },
};

const USAGE = [
  'usage: tickwatch export --symbol BTCUSDT --from 2024-08-08T23:00:00Z --to 2024-08-09T01:00:00Z --out bars.parquet',
  '                        [--width 1m|short|5m|1h] [--market spot|usdm] [--exchange binance] [--format csv|parquet]',
  '',
  'Writes the bars of one symbol with bucket in [from, to) to a CSV or Parquet file (format from the extension unless',
  '--format is given). Prices, volumes and VWAP are exact decimal text. Progress goes to stderr.',
].join('\n');

export const exportCommand: Command = {
  name: 'export',
  summary: 'write bars for a symbol and time range to CSV or Parquet',
  usage: USAGE,
  options: {
    symbol: { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    out: { type: 'string', short: 'o' },
    width: { type: 'string', default: '1m' },
    market: { type: 'string' },
    exchange: { type: 'string', default: 'binance' },
    format: { type: 'string' },
  },
  async run({ config, log, values }) {
    const problems: string[] = [];
    const symbol = typeof values.symbol === 'string' ? values.symbol.toUpperCase() : undefined;
    const fromMs = exportTime(values.from);
    const toMs = exportTime(values.to);
    const out = typeof values.out === 'string' ? values.out : undefined;
    const width = String(values.width) as ExportWidth;
    const format = typeof values.format === 'string' ? values.format : out?.endsWith('.parquet') ? 'parquet' : 'csv';
    if (!symbol) problems.push('--symbol is required');
    if (!Number.isFinite(fromMs)) problems.push('--from must be a time between 2000 and 2100, like 2024-08-08T23:00:00Z');
    if (!Number.isFinite(toMs)) problems.push('--to must be a time between 2000 and 2100, like 2024-08-09T01:00:00Z');
    if (Number.isFinite(fromMs) && Number.isFinite(toMs) && fromMs >= toMs) problems.push('--from must be before --to');
    if (!out) problems.push('--out is required');
    // Own keys only: `constructor` and other inherited names are not widths.
    if (!Object.hasOwn(EXPORT_WIDTHS, width)) problems.push(`--width must be one of ${Object.keys(EXPORT_WIDTHS).join(', ')}`);
    if (format !== 'csv' && format !== 'parquet') problems.push('--format must be csv or parquet');
    if (problems.length > 0) {
      process.stderr.write(`${problems.join('\n')}\n\n${USAGE}\n`);
      return 1;
    }
    const client = createClient(config, 'tickwatch-export', log);
    await client.connect();
    try {
      let bar: ((n: number) => void) | undefined;
      const n = await exportBars(
        pgSession(client),
        {
          exchange: String(values.exchange),
          market: typeof values.market === 'string' ? values.market : config.source.market,
          symbol: symbol!, fromMs, toMs, width, format: format as 'csv' | 'parquet', path: out!,
        },
        (done, total) => (bar ??= progressBar(total))(done),
      );
      log.info({ symbol, width, format, path: out, bars: n }, 'export written');
      return 0;
    } finally {
      await client.end();
    }
  },
};

/** A time flag as epoch ms, NaN unless it parses and lies in 2000..2100 (what bars can hold). */
export function exportTime(value: unknown): number {
  const ms = typeof value === 'string' ? Date.parse(value) : NaN;
  return ms >= Date.UTC(2000, 0, 1) && ms <= Date.UTC(2100, 0, 1) ? ms : NaN;
}
