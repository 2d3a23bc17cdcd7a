-- Acknowledge paths and the daily digest: used link ids, digest runs, SMS help replies.
CREATE TABLE used_links (
    token_id TEXT PRIMARY KEY,  -- the signed link's nonce: a link works once
    incident_id {ref} NOT NULL,
    used_at {time} NOT NULL,
    expires_at {time} NOT NULL  -- rows past this are dropped: the signature has expired too
);
CREATE INDEX used_links_expiry ON used_links (expires_at);

CREATE TABLE digest_runs (
    digest TEXT PRIMARY KEY,  -- one daily digest per route
    last_date TEXT NOT NULL,  -- local date (YYYY-MM-DD) of the last digest sent
    sent_at {time} NOT NULL
);

CREATE TABLE sms_help_replies (
    phone TEXT NOT NULL,
    at {time} NOT NULL
);
CREATE INDEX sms_help_replies_phone ON sms_help_replies (phone, at);
