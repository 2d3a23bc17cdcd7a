-- Escalation: the engine's state on the incident row, the fenced timer, the incident timeline,
-- thread references returned by chat channels, and the dead man's switch.
ALTER TABLE incidents ADD COLUMN escalation TEXT;  -- EscalationState JSON (NULL: not started)
ALTER TABLE incidents ADD COLUMN timer_version INTEGER;  -- state version the timer was set for
ALTER TABLE outbox ADD COLUMN thread TEXT NOT NULL DEFAULT '{}';

CREATE TABLE incident_events (
    id {id},
    incident_id {ref} NOT NULL REFERENCES incidents (id),
    at {time} NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);

CREATE TABLE watchdogs (
    name TEXT PRIMARY KEY,
    last_seen {time} NOT NULL,
    down_since {time},
    incident_id {ref} REFERENCES incidents (id)
);
