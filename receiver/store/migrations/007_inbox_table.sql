-- The PostgreSQL inbox: accepted webhook bodies, committed before the 200 and applied by one
-- applier at a time. A row is deleted in the transaction that applies it (no watermark: with
-- concurrent inserters a lower seq may commit after a higher one). SQLite keeps its inbox in
-- a file of its own, so there these tables stay empty.
CREATE TABLE inbox (
    seq {id},
    received_at {time} NOT NULL,
    body {bytes} NOT NULL
);
-- Rows that failed to apply, moved here by the transaction that tried them.
CREATE TABLE inbox_failed (
    seq {ref} PRIMARY KEY,
    received_at {time} NOT NULL,
    body {bytes} NOT NULL,
    error TEXT NOT NULL,
    failed_at {time} NOT NULL
);
