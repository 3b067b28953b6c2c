-- Kafka positions of the tick writers, stored in the same transaction as the rows they cover: after a crash, restart
-- or rebalance a writer resumes exactly at next_offset, so every record's effect lands in the tables once.
-- next_offset is the offset of the next record to write (Kafka's "committed offset" convention). A writer only moves
-- it forward from the value it last read (UPDATE ... WHERE next_offset = expected), so a member that lost its
-- partition in a rebalance cannot write the same records a second time.
CREATE TABLE writer_offsets (
    group_id     text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL CHECK (partition >= 0),
    next_offset  bigint      NOT NULL CHECK (next_offset >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);
