-- How far each durable intake inbox has been applied; written in the transaction that applies
-- its payloads, so a payload is never applied twice across a crash.
CREATE TABLE inbox_marks (
    inbox_id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
