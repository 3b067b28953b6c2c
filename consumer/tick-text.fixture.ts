// COPY text rows of the ticks, for tests and benches only: the reference the writer's binary rows (copy-binary.ts,
// tick-rows.ts) are compared with on a real database, and the text side of bench:write's COPY limit.
import { rowTimeMs, type Tick } from '../common/records.ts';
import { CopyTextEncoder, escapeCopyText, NULL } from './copy-rows.ts';

/** Tick rows in COPY text format (columns in COLUMNS order of the tick's table), besides the book and gap rows. */
export class TickTextEncoder extends CopyTextEncoder {
  /** One row with its trailing newline. */
  row(t: Tick): string {
    const head = `${escapeCopyText(t.exchange)}\t${escapeCopyText(t.market)}\t${escapeCopyText(t.symbol)}\t`;
    switch (t.type) {
      case 'trade':
        return (
          `${head}${this.timeMs(t.exchangeTimeMs)}\t${t.tradeId}\t${t.price}\t${t.quantity}\t${t.buyerIsMaker ? 't' : 'f'}\t` +
          `${escapeCopyText(t.side)}\t${this.timeMs(t.eventTimeMs)}\t${this.timeUs(t.receiveTimeUs)}\n`
        );
      case 'aggTrade':
        return (
          `${head}${this.timeMs(t.exchangeTimeMs)}\t${t.aggId}\t${t.firstTradeId}\t${t.lastTradeId}\t${t.price}\t${t.quantity}\t` +
          `${t.buyerIsMaker ? 't' : 'f'}\t${escapeCopyText(t.side)}\t${this.timeMs(t.eventTimeMs)}\t${this.timeUs(t.receiveTimeUs)}\n`
        );
      case 'bookTicker':
        return (
          `${head}${this.timeMs(rowTimeMs(t))}\t${t.updateId}\t${t.bidPrice}\t${t.bidQty}\t${t.askPrice}\t${t.askQty}\t` +
          `${t.exchangeTimeMs === null ? NULL : this.timeMs(t.exchangeTimeMs)}\t${t.eventTimeMs === null ? NULL : this.timeMs(t.eventTimeMs)}\t` +
          `${this.timeUs(t.receiveTimeUs)}\n`
        );
    }
  }

  rows(ticks: readonly Tick[]): string {
    let out = '';
    for (const t of ticks) out += this.row(t);
    return out;
  }
}
