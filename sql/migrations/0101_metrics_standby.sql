-- A standby metrics worker (issue 17): what the active worker decided, kept in the database in the same transaction
-- that consumes the invalidations it came from, so the worker taking over publishes and mails exactly what its
-- predecessor had not (metrics/README.md, "Standby").

-- Bar and anomaly records to publish, in the order they were decided. The publisher sends them in a Kafka transaction
-- that also commits `id + 1` of the last one as the offset of the outbox's consumer group, then deletes them.
CREATE TABLE metrics_outbox (
    id       bigserial PRIMARY KEY,
    topic    text      NOT NULL,
    key      text      NOT NULL,
    value    text      NOT NULL,
    kind     text      NOT NULL   -- bar | anomaly (the record-type header)
);

-- Alert mails decided by the policy, one row each: pending -> sending (handed to SMTP) -> sent | failed.
-- A row left `sending` by a worker that died is sent again by its successor with the same Message-ID.
CREATE TABLE alert_mail_outbox (
    id          bigserial   PRIMARY KEY,
    key         text        NOT NULL,  -- rule|exchange|market|symbol
    mail        jsonb       NOT NULL,  -- the AlertMail
    state       text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'sent', 'failed')),
    attempts    integer     NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX alert_mail_outbox_open ON alert_mail_outbox (id) WHERE state IN ('pending', 'sending');

-- The worker's progress that is not in the invalidation list: the end of the short buckets already refreshed and
-- published in the open minute, so a successor goes on from there.
CREATE TABLE metrics_progress (
    id                     boolean     PRIMARY KEY DEFAULT true CHECK (id),
    short_refreshed_until  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO metrics_progress DEFAULT VALUES;
