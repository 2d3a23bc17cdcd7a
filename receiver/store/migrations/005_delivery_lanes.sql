-- Delivery lanes and exact at-most-once delivery.
-- priority: 0 critical, 1 warning, 2 anything else; a lane that is saturated takes the most
-- severe due message first.
-- started_at: when an at-most-once request was about to leave (committed right before the
-- provider call). NULL on a row left `sending` proves the request never left: it is resent.
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
ALTER TABLE outbox ADD COLUMN started_at {time};
CREATE INDEX outbox_lane ON outbox (channel, priority, next_attempt_at) WHERE status = 'pending';
