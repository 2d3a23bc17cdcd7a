-- How far the intake applier got in each inbox: saved in the transaction that applies the
-- inbox rows, so a restarted applier resumes exactly after the last applied row.
CREATE TABLE inbox_marks (inbox_id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
