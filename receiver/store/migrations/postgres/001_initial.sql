-- Alert groups, incidents, their alerts, the outbox and the delivery log.
-- Times are epoch seconds (DOUBLE PRECISION); JSON columns are TEXT (parsed by the application).
CREATE TABLE alert_groups (
    id BIGSERIAL PRIMARY KEY,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    marks TEXT NOT NULL DEFAULT '{}',  -- fingerprint -> newest observation (ordering watermark)
    open_incident_id BIGINT,
    UNIQUE (receiver, group_key)
);

CREATE TABLE incidents (
    id BIGSERIAL PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES alert_groups (id),
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
    digest BOOLEAN NOT NULL DEFAULT FALSE,  -- info tier: never pages, goes into the daily digest
    digested_at DOUBLE PRECISION,
    paged BOOLEAN NOT NULL DEFAULT FALSE,
    opened_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    resolved_at DOUBLE PRECISION,
    resolved_by TEXT,
    -- escalation (applied by the escalation worker; fenced by `version`)
    step INTEGER NOT NULL DEFAULT 0,
    next_step_at DOUBLE PRECISION,
    acked_at DOUBLE PRECISION,
    acked_by TEXT,
    version INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX incidents_state ON incidents (state, id);
CREATE INDEX incidents_next_step ON incidents (next_step_at) WHERE next_step_at IS NOT NULL;

CREATE TABLE incident_alerts (
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at DOUBLE PRECISION NOT NULL,
    ends_at DOUBLE PRECISION,
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL DEFAULT '',
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (incident_id, fingerprint)
);

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    incident_id BIGINT NOT NULL REFERENCES incidents (id),
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    recipient TEXT,
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'unknown')),
    at_most_once BOOLEAN NOT NULL DEFAULT FALSE,
    rate_key TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    deadline DOUBLE PRECISION,
    sent_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    last_error TEXT NOT NULL DEFAULT '',
    provider_id TEXT NOT NULL DEFAULT '',
    fallback_of BIGINT REFERENCES outbox (id)
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_rate ON outbox (rate_key, sent_at) WHERE rate_key IS NOT NULL;
CREATE INDEX outbox_incident ON outbox (incident_id);

CREATE TABLE deliveries (
    id BIGSERIAL PRIMARY KEY,
    outbox_id BIGINT NOT NULL REFERENCES outbox (id),
    attempt INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX deliveries_outbox ON deliveries (outbox_id);
