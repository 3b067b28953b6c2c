-- Repeatable: brings the tick and book tables' storage (hypertables, compression, retention) in line with the configured
-- settings after every migrate run. A no-op on plain PostgreSQL and when nothing changed.
SELECT sync_tick_storage('trades',       'exchange, market, symbol', 'time DESC, trade_id DESC');
SELECT sync_tick_storage('agg_trades',   'exchange, market, symbol', 'time DESC, agg_id DESC');
SELECT sync_tick_storage('book_tickers', 'exchange, market, symbol', 'time DESC, update_id DESC');
SELECT sync_tick_storage('books',        'exchange, market, symbol', 'time DESC, sequence DESC');
SELECT sync_tick_storage('top_of_book',  'exchange, market, symbol', 'time DESC, sequence DESC');
