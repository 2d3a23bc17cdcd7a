-- Retention: find expired rows without scanning, and keep foreign-key checks on delete cheap
-- (each deleted outbox row or alert group is checked against the rows that reference it).
CREATE INDEX incidents_resolved ON incidents (resolved_at) WHERE state = 'resolved';
CREATE INDEX outbox_finished ON outbox (finished_at)
    WHERE status IN ('sent', 'failed', 'unknown');
CREATE INDEX outbox_fallback ON outbox (fallback_of) WHERE fallback_of IS NOT NULL;
CREATE INDEX incidents_group ON incidents (group_id);
