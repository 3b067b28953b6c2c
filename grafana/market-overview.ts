// Market Overview: candles with volume per symbol, VWAP against the last price, trades per minute, quote volume,
// spread in basis points, liquidity imbalance, RSI and MACD, and a cross-asset price ratio. Reads the reader views of
// sql/aggregates.sql (bars_by_width, quote_metrics_1m) and the table bar_indicators_1m.
import * as candlestick from '@grafana/grafana-foundation-sdk/candlestick';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { DASHBOARD_UIDS, TIMESCALEDB, legendTable, marketDashboard, marketFilter, perSymbol, symbolVariable, thresholds, tooltipAll } from './panels.ts';
import { sql, type SqlQueryBuilder } from './sql-query.ts';

/**
 * Bars of the width chosen by $bar (1m, 5m or 1h): the width is a quoted value, never part of a relation name
 * (the view bars_by_width, sql/aggregates.sql).
 */
const BARS = 'bars_by_width';
const WIDTH = "width = '$bar'";
const bars = (columns: string) => perSymbol(columns, BARS, WIDTH);

function series(title: string, unit: string, query: SqlQueryBuilder, w = 12): timeseries.PanelBuilder {
  return new timeseries.PanelBuilder()
    .title(title)
    .datasource(TIMESCALEDB)
    .withTarget(query)
    .unit(unit)
    .legend(legendTable())
    .tooltip(tooltipAll())
    .gridPos({ x: 0, y: 0, w, h: 8 });
}

export function marketOverview(): dashboard.DashboardBuilder {
  const b = marketDashboard('Market Overview', {
    uid: DASHBOARD_UIDS.marketOverview,
    description: 'Bars, prices, activity, liquidity and indicators per symbol, from the 1-minute metrics in TimescaleDB.',
    tags: ['market'],
    from: 'now-3h',
  });
  b.withVariable(
    new dashboard.CustomVariableBuilder('bar')
      .allowCustomValue(false)
      .label('Bar width')
      .values('1m,5m,1h')
      .current({ text: '1m', value: '1m', selected: true }),
  )
    .withVariable(symbolVariable('ratio_base', 'Ratio of', 'BTCUSDT'))
    .withVariable(symbolVariable('ratio_quote', 'to', 'ETHUSDT'));

  return b
    .withRow(new dashboard.RowBuilder('Price'))
    .withPanel(
      new candlestick.PanelBuilder()
        .title('Candles and volume: $symbol')
        .datasource(TIMESCALEDB)
        .withTarget(
          sql(`
            SELECT bucket AS time, open, high, low, close, volume
              FROM ${BARS}
             WHERE ${WIDTH} AND $__timeFilter(bucket) AND ${marketFilter()}
             ORDER BY 1`),
        )
        .mode(candlestick.VizDisplayMode.CandlesVolume)
        .candleStyle(candlestick.CandleStyle.Candles)
        .colorStrategy(candlestick.ColorStrategy.OpenClose)
        .fields(new candlestick.CandlestickFieldMapBuilder().open('open').high('high').low('low').close('close').volume('volume'))
        .includeAllFields(false)
        .repeat('symbol')
        .repeatDirection('h')
        .maxPerRow(2)
        // Full width: Grafana splits a horizontal repeat across the row (at most maxPerRow per row).
        .gridPos({ x: 0, y: 0, w: 24, h: 10 }),
    )
    .withPanel(
      series(
        'VWAP and last price',
        'currencyUSD',
        bars('vwap, close AS last_price'),
      ),
    )
    .withPanel(
      series(
        'Cross-asset ratio: $ratio_base / $ratio_quote',
        'none',
        sql(`
          SELECT a.bucket AS time, a.close / b.close AS ratio
            FROM ${BARS} a
            JOIN ${BARS} b ON b.width = a.width AND b.exchange = a.exchange AND b.market = a.market AND b.bucket = a.bucket
           WHERE a.${WIDTH} AND $__timeFilter(a.bucket) AND a.exchange = '$exchange' AND a.market = '$market'
             AND a.symbol = '$ratio_base' AND b.symbol = '$ratio_quote'
           ORDER BY 1`),
      ).decimals(6),
    )
    .withRow(new dashboard.RowBuilder('Activity and liquidity'))
    .withPanel(
      series(
        'Trades per minute',
        'short',
        perSymbol('trade_count AS trades', 'bars_1m'),
      )
        .drawStyle(common.GraphDrawStyle.Bars)
        .fillOpacity(60),
    )
    .withPanel(
      series(
        'Quote volume',
        'currencyUSD',
        bars('quote_volume'),
      )
        .drawStyle(common.GraphDrawStyle.Bars)
        .fillOpacity(60),
    )
    .withPanel(
      series(
        'Spread (bps)',
        'none',
        perSymbol('mean_spread_bps AS mean, max_spread_bps AS max', 'quote_metrics_1m'),
      ).description('Ask minus bid over the mid, in basis points: the mean and the widest of each minute'),
    )
    .withPanel(
      series(
        'Liquidity imbalance',
        'percentunit',
        perSymbol('imbalance', 'quote_metrics_1m'),
      )
        .description('Top-of-book bid notional / (bid + ask notional): above 50% more is bid than offered')
        .min(0)
        .max(1),
    )
    .withRow(new dashboard.RowBuilder('Indicators'))
    .withPanel(
      series(
        'RSI (14)',
        'none',
        perSymbol('rsi_14 AS rsi', 'bar_indicators_1m'),
      )
        .min(0)
        .max(100)
        .thresholds(
          thresholds([
            { value: null, color: 'green' },
            { value: 30, color: 'yellow' },
            { value: 70, color: 'red' },
          ]),
        )
        .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed)),
    )
    .withPanel(
      series(
        'MACD (12, 26, 9)',
        'none',
        perSymbol('macd, macd_signal AS signal, macd_histogram AS histogram', 'bar_indicators_1m'),
      ),
    );
}
