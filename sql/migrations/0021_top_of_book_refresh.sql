-- Puts top-of-book minutes on the metrics worker's work list: inserted top_of_book rows touch their 1-minute buckets
-- (stream 'book') as ticks do (0010), so the worker refreshes them with CALL refresh_top_of_book next to
-- refresh_metrics (metrics/refresher.ts), late and re-delivered books included.
CREATE TRIGGER top_of_book_invalidate_metrics AFTER INSERT ON top_of_book
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION invalidate_metric_buckets('book');
