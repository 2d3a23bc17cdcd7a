"""Every `maintwatch_receiver_*` metric, declared once: name, HELP, type and labels.

`receiver.metrics` and the workers' metric classes register client objects built from these;
the rules catalogue and the docs check read them. Only `maintwatch.metricdef` is imported, so
the rules import this module without loading the receiver or a client library.
"""

from __future__ import annotations

from maintwatch.metricdef import MetricDef, counter, gauge, histogram

# Intake
WEBHOOKS_TOTAL = counter(
    "maintwatch_receiver_webhooks_total", "Alertmanager webhook requests by outcome.", "outcome"
)
WEBHOOK_DURATION_SECONDS = histogram(
    "maintwatch_receiver_webhook_duration_seconds", "Time to validate and persist a webhook."
)
INTAKE_APPLY_FAILURES_TOTAL = counter(
    "maintwatch_receiver_intake_apply_failures_total",
    "Accepted webhooks that failed to apply (kept in the inbox file's inbox_failed table).",
)
INTAKE_LAG_SECONDS = gauge(
    "maintwatch_receiver_intake_lag_seconds",
    "Seconds the oldest webhook of the last batch this receiver's applier applied waited"
    " between its 200 and its commit (inbox intake; pages wait at least this long).",
)
INTAKE_PENDING = gauge(
    "maintwatch_receiver_intake_pending",
    "Webhooks accepted and not yet applied (inbox intake: this receiver's inbox file, or every"
    " replica's rows in PostgreSQL's inbox table).",
)
INTAKE_OLDEST_PENDING_AGE_SECONDS = gauge(
    "maintwatch_receiver_intake_oldest_pending_age_seconds",
    "Age of the oldest webhook accepted and not yet applied (0 when none): it grows while the"
    " applier is down, stuck or behind.",
)
ALERTS_RECEIVED_TOTAL = counter(
    "maintwatch_receiver_alerts_received_total", "Alerts received in webhooks by status.", "status"
)
ALERTS_TRUNCATED_TOTAL = counter(
    "maintwatch_receiver_alerts_truncated_total", "Alerts Alertmanager left out (truncatedAlerts)."
)
INCIDENT_CHANGES_TOTAL = counter(
    "maintwatch_receiver_incident_changes_total", "Incident changes applied by action.", "action"
)

# The store, read by the worker each round (a scrape does no I/O)
INCIDENTS = gauge("maintwatch_receiver_incidents", "Incidents by state.", "state")
OUTBOX_MESSAGES = gauge(
    "maintwatch_receiver_outbox_messages", "Outbox messages by status.", "status"
)
OUTBOX_OLDEST_PENDING_AGE_SECONDS = gauge(
    "maintwatch_receiver_outbox_oldest_pending_age_seconds",
    "Age of the oldest undelivered outbox message (0 when none).",
)

# Delivery
NOTIFICATIONS_TOTAL = counter(
    "maintwatch_receiver_notifications_total",
    "Delivery attempts by channel and outcome.",
    "channel",
    "outcome",
)
NOTIFICATION_FALLBACKS_TOTAL = counter(
    "maintwatch_receiver_notification_fallbacks_total",
    "Messages handed to the fallback channel, by channel and outcome (failed, unknown).",
    "channel",
    "outcome",
)
NOTIFICATIONS_RECONCILED_TOTAL = counter(
    "maintwatch_receiver_notifications_reconciled_total",
    "At-most-once messages checked with the provider before resending, by result:"
    " found (already there, not sent again) or sent.",
    "channel",
    "outcome",
)
OUTBOX_RECOVERED_TOTAL = counter(
    "maintwatch_receiver_outbox_recovered_total",
    "Messages found sending past their lease (a worker died), by what follows: resend"
    " (at least once, or the request never left) or check (it may have left).",
    "action",
)
DELIVERY_LATENCY_SECONDS = histogram(
    "maintwatch_receiver_delivery_latency_seconds",
    "Time from queueing a notification to its successful delivery.",
    "channel",
)
SEND_DURATION_SECONDS = histogram(
    "maintwatch_receiver_send_duration_seconds", "Duration of one channel send call.", "channel"
)

# Every background worker
WORKER_RUNS_TOTAL = counter(
    "maintwatch_receiver_worker_runs_total",
    "Background worker passes by worker and outcome (ok, unavailable, error).",
    "worker",
    "outcome",
)
WORKER_LAST_SUCCESS_TIMESTAMP_SECONDS = gauge(
    "maintwatch_receiver_worker_last_success_timestamp_seconds",
    "When each background worker last finished a pass without errors (until its first: "
    "when it started).",
    "worker",
)
WORKER_INTERVAL_SECONDS = gauge(
    "maintwatch_receiver_worker_interval_seconds",
    "How often each background worker passes when nothing wakes it sooner.",
    "worker",
)

# Escalation worker
ESCALATION_TIMERS_TOTAL = counter(
    "maintwatch_receiver_escalation_timers_total",
    "Due escalation timers handled, by result (acted; ignored: stale or policy gone).",
    "result",
)
ESCALATION_LATENESS_SECONDS = histogram(
    "maintwatch_receiver_escalation_lateness_seconds",
    "How late a due escalation timer was handled.",
)
ESCALATION_TICK_DURATION_SECONDS = histogram(
    "maintwatch_receiver_escalation_tick_duration_seconds",
    "Duration of one escalation worker tick.",
)
OVERDUE_TIMERS = gauge(
    "maintwatch_receiver_overdue_timers",
    "Open incidents whose escalation timer is overdue by more than overdue_after.",
)

# Silencer (with `alertmanager.url`)
ALERTMANAGER_SILENCES = gauge(
    "maintwatch_receiver_alertmanager_silences",
    "Alertmanager silences held for acknowledged incidents after the last pass.",
)
ALERTMANAGER_SILENCE_CHANGES_TOTAL = counter(
    "maintwatch_receiver_alertmanager_silence_changes_total",
    "Silences created, extended and expired in Alertmanager, and changes it rejected.",
    "action",
)
ALERTMANAGER_ERRORS_TOTAL = counter(
    "maintwatch_receiver_alertmanager_errors_total",
    "Silencer passes that failed on an Alertmanager call.",
)
ALERTMANAGER_LAST_SUCCESS_TIMESTAMP_SECONDS = gauge(
    "maintwatch_receiver_alertmanager_last_success_timestamp_seconds",
    "When the silencer last finished a pass.",
)

# Retention
RETENTION_DELETED_TOTAL = counter(
    "maintwatch_receiver_retention_deleted_total",
    "Rows pruned by retention, by what was pruned.",
    "target",
)
RETENTION_LAST_SUCCESS_TIMESTAMP_SECONDS = gauge(
    "maintwatch_receiver_retention_last_success_timestamp_seconds",
    "When retention last finished a run without errors.",
)

METRICS: tuple[MetricDef, ...] = (
    WEBHOOKS_TOTAL,
    WEBHOOK_DURATION_SECONDS,
    INTAKE_APPLY_FAILURES_TOTAL,
    INTAKE_LAG_SECONDS,
    INTAKE_PENDING,
    INTAKE_OLDEST_PENDING_AGE_SECONDS,
    ALERTS_RECEIVED_TOTAL,
    ALERTS_TRUNCATED_TOTAL,
    INCIDENT_CHANGES_TOTAL,
    INCIDENTS,
    OUTBOX_MESSAGES,
    OUTBOX_OLDEST_PENDING_AGE_SECONDS,
    NOTIFICATIONS_TOTAL,
    NOTIFICATION_FALLBACKS_TOTAL,
    NOTIFICATIONS_RECONCILED_TOTAL,
    OUTBOX_RECOVERED_TOTAL,
    DELIVERY_LATENCY_SECONDS,
    SEND_DURATION_SECONDS,
    WORKER_RUNS_TOTAL,
    WORKER_LAST_SUCCESS_TIMESTAMP_SECONDS,
    WORKER_INTERVAL_SECONDS,
    ESCALATION_TIMERS_TOTAL,
    ESCALATION_LATENESS_SECONDS,
    ESCALATION_TICK_DURATION_SECONDS,
    OVERDUE_TIMERS,
    ALERTMANAGER_SILENCES,
    ALERTMANAGER_SILENCE_CHANGES_TOTAL,
    ALERTMANAGER_ERRORS_TOTAL,
    ALERTMANAGER_LAST_SUCCESS_TIMESTAMP_SECONDS,
    RETENTION_DELETED_TOTAL,
    RETENTION_LAST_SUCCESS_TIMESTAMP_SECONDS,
)
