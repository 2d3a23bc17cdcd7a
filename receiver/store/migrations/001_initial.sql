-- Alert groups, incidents, their alerts, the outbox and the delivery log.
-- Written once for both databases: receiver.store.dialect spells {id}, {ref}, {time}, {bool}
-- and {false} (e.g. INTEGER PRIMARY KEY on SQLite, BIGSERIAL PRIMARY KEY on PostgreSQL).
-- Times are epoch seconds ({time}); JSON columns are TEXT.
CREATE TABLE alert_groups (
    id {id},
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    marks TEXT NOT NULL DEFAULT '{}',  -- fingerprint -> newest observation (ordering watermark)
    open_incident_id {ref},
    UNIQUE (receiver, group_key)
);

CREATE TABLE incidents (
    id {id},
    group_id {ref} NOT NULL REFERENCES alert_groups (id),
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('triggered', 'acknowledged', 'resolved')),
    severity TEXT NOT NULL,
    group_labels TEXT NOT NULL,
    common_labels TEXT NOT NULL,
    common_annotations TEXT NOT NULL,
    external_url TEXT NOT NULL DEFAULT '',
    truncated_alerts INTEGER NOT NULL DEFAULT 0,
    routes TEXT NOT NULL DEFAULT '[]',
    channels TEXT NOT NULL DEFAULT '[]',
    people TEXT NOT NULL DEFAULT '[]',
    policy TEXT,
    digest {bool} NOT NULL DEFAULT {false},  -- info tier: never pages, goes into the daily digest
    digested_at {time},
    paged {bool} NOT NULL DEFAULT {false},
    opened_at {time} NOT NULL,
    updated_at {time} NOT NULL,
    resolved_at {time},
    resolved_by TEXT,
    -- escalation (applied by the escalation worker; fenced by `version`)
    step INTEGER NOT NULL DEFAULT 0,
    next_step_at {time},
    acked_at {time},
    acked_by TEXT,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX incidents_state ON incidents (state, id);
CREATE INDEX incidents_next_step ON incidents (next_step_at) WHERE next_step_at IS NOT NULL;

CREATE TABLE incident_alerts (
    incident_id {ref} NOT NULL REFERENCES incidents (id),
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at {time} NOT NULL,
    ends_at {time},
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL DEFAULT '',
    updated_at {time} NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
);

CREATE TABLE outbox (
    id {id},
    incident_id {ref} NOT NULL REFERENCES incidents (id),
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
    at_most_once {bool} NOT NULL DEFAULT {false},
    rate_key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at {time} NOT NULL,
    next_attempt_at {time} NOT NULL,
    deadline {time},
    sent_at {time},
    finished_at {time},
    last_error TEXT NOT NULL DEFAULT '',
    provider_id TEXT NOT NULL DEFAULT '',
    fallback_of {ref} REFERENCES outbox (id)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_rate ON outbox (rate_key, sent_at) WHERE rate_key IS NOT NULL;
CREATE INDEX outbox_incident ON outbox (incident_id);

CREATE TABLE deliveries (
    id {id},
    outbox_id {ref} NOT NULL REFERENCES outbox (id),
    attempt INTEGER NOT NULL,
    at {time} NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deliveries_outbox ON deliveries (outbox_id);
