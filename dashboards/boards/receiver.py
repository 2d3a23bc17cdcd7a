"""The receiver dashboard: are pages getting out, and how fast? Intake, delivery, escalation."""

from __future__ import annotations

from dashboards.builder import RATE_INTERVAL, Board, Panel, Query, glance, quantile, rate_sum
from dashboards.levels import counted, steps
from rules.defs_receiver import FAILED_OUTCOMES
from rules.model import Thresholds

# Store gauges and backlogs are taken with `max`, as the alerts take them: with PostgreSQL
# every replica reports the one shared store, which a sum would count once per replica.
INTAKE_AGE = "max(maintwatch_receiver_intake_oldest_pending_age_seconds)"
WORKER_LAST_SUCCESS = "maintwatch_receiver_worker_last_success_timestamp_seconds"


def health(t: Thresholds) -> list[Panel]:
    """Return the at-a-glance stats, coloured where their alerts fire."""
    job = t.alerts["MaintwatchReceiverDown"].params["job"]
    workers = t.alerts["MaintwatchReceiverWorkerStalled"].params["workers"]
    window = t.alerts["MaintwatchReceiverNotificationsFailing"].params["window"]
    failed = f'maintwatch_receiver_notifications_total{{outcome=~"{FAILED_OUTCOMES}"}}'
    return [
        glance(
            "Receiver up",
            "Prometheus scrapes every receiver target. No: one is down, or Prometheus has no"
            " receiver target at all; while the receiver is down, nothing pages.",
            "bool_yes_no",
            [Query(f'min(up{{job=~"{job}.*"}}) or vector(0)')],
            [(0, "critical"), (1, "ok")],
            ["MaintwatchReceiverDown"],
        ),
        glance(
            "Oldest undelivered notification",
            "How long the oldest message in the outbox has waited (0: none waits). Growing"
            " while alerts fire: pages are not leaving.",
            "s",
            [Query("max(maintwatch_receiver_outbox_oldest_pending_age_seconds)")],
            steps(t, "MaintwatchReceiverOutboxStuck"),
            ["MaintwatchReceiverOutboxStuck"],
        ),
        glance(
            "Webhooks waiting",
            "Webhooks answered 200 and not applied yet. A few for a moment is normal; a count"
            " that keeps rising means the applier is behind or stuck.",
            "short",
            [Query("max(maintwatch_receiver_intake_pending)")],
            runbooks=["MaintwatchReceiverIntakeLagging"],
        ),
        glance(
            "Oldest waiting webhook",
            "How long the oldest accepted webhook has waited to be applied: its pages start at"
            " least this late.",
            "s",
            [Query(INTAKE_AGE)],
            steps(t, "MaintwatchReceiverIntakeLagging"),
            ["MaintwatchReceiverIntakeLagging"],
        ),
        glance(
            "Overdue escalations",
            "Open incidents whose next escalation step is more than escalation.overdue_after"
            " late: the escalation worker is stuck, or no replica runs it.",
            "short",
            [Query("max(maintwatch_receiver_overdue_timers)")],
            counted(t, "MaintwatchReceiverEscalationOverdue"),
            ["MaintwatchReceiverEscalationOverdue"],
        ),
        glance(
            f"Failed notifications ({window})",
            f"Notifications that failed for good or ended unknown within {window}, on the"
            " worst channel of a replica. The alert also counts a channel's first failure since"
            " the receiver started, which this sum misses.",
            "short",
            [Query(f"max(sum by (instance, channel) (increase({failed}[{window}]))) or vector(0)")],
            counted(t, "MaintwatchReceiverNotificationsFailing"),
            ["MaintwatchReceiverNotificationsFailing"],
        ),
        glance(
            "Paging workers: last good pass",
            f"Time since each worker pages depend on ({workers.replace('|', ', ')}) last"
            " finished a pass without errors, on the slowest replica; they pass every few"
            " seconds.",
            "s",
            [
                Query(
                    f'max by (worker) (time() - {WORKER_LAST_SUCCESS}{{worker=~"{workers}"}})',
                    "{{worker}}",
                )
            ],
            steps(t, "MaintwatchReceiverWorkerStalled"),
            ["MaintwatchReceiverWorkerStalled"],
            width=8,
        ),
        Panel(
            "Open incidents",
            "Incidents not resolved yet: triggered (paging and escalating) and acknowledged.",
            "short",
            [
                Query(
                    'max by (state) (maintwatch_receiver_incidents{state!="resolved"})', "{{state}}"
                )
            ],
            "stat",
            8,
            5,
        ),
        glance(
            "Firing receiver alerts",
            "Alerts about the receiver firing now. They reach people only if Alertmanager routes"
            " them around the receiver.",
            "short",
            [
                Query(
                    'count by (alertname) (ALERTS{alertstate="firing",'
                    ' alertname=~"MaintwatchReceiver.*"})',
                    "{{alertname}}",
                )
            ],
            [(1, "critical")],
            width=8,
        ),
    ]


def intake(t: Thresholds) -> list[Panel]:
    """Return the intake panels: Alertmanager's webhooks until they are applied."""
    window = t.alerts["MaintwatchReceiverIntakeApplyFailed"].params["window"]
    webhook_seconds = "maintwatch_receiver_webhook_duration_seconds"
    return [
        Panel(
            "Webhooks per minute",
            "Alertmanager's webhook requests by outcome. With the inbox each is counted as"
            " accepted when answered, then as processed, unchanged or apply_failed when applied;"
            " any other outcome was refused or failed (watchdog: the dead man's switch).",
            "short",
            [Query(rate_sum("maintwatch_receiver_webhooks_total", "outcome"), "{{outcome}}")],
            width=8,
        ),
        Panel(
            "Webhook handling time",
            "Time to validate and persist a webhook before answering it. A rising p99 means"
            " the store or the disk is slow, and Alertmanager waits for it.",
            "s",
            [
                Query(quantile(0.5, webhook_seconds), "p50"),
                Query(quantile(0.99, webhook_seconds), "p99"),
            ],
            width=8,
        ),
        Panel(
            "Intake delay",
            "Oldest waiting: age of the oldest webhook not applied yet (what the alert"
            " watches; it keeps growing while the applier is stuck). Last batch: how long the"
            " oldest webhook of the latest applied batch waited.",
            "s",
            [
                Query(INTAKE_AGE, "oldest waiting"),
                Query("maintwatch_receiver_intake_lag_seconds", "{{instance}} last batch"),
            ],
            thresholds=steps(t, "MaintwatchReceiverIntakeLagging"),
            runbooks=["MaintwatchReceiverIntakeLagging"],
            width=8,
        ),
        Panel(
            f"Webhooks that failed to apply ({window})",
            "Accepted webhooks that failed to apply: their alerts may have paged nobody."
            " `maintwatch-receiver inbox failed` lists them, `inbox replay` applies them.",
            "short",
            [
                Query(
                    "sum by (instance)"
                    f" (increase(maintwatch_receiver_intake_apply_failures_total[{window}]))",
                    "{{instance}}",
                )
            ],
            thresholds=counted(t, "MaintwatchReceiverIntakeApplyFailed"),
            runbooks=["MaintwatchReceiverIntakeApplyFailed"],
            width=8,
        ),
        Panel(
            "Alerts received per minute",
            "Alerts in the webhooks by status; truncated: alerts Alertmanager left out of a"
            " webhook (its max_alerts).",
            "short",
            [
                Query(
                    rate_sum("maintwatch_receiver_alerts_received_total", "status"), "{{status}}"
                ),
                Query(rate_sum("maintwatch_receiver_alerts_truncated_total", ""), "truncated"),
            ],
            width=8,
        ),
        Panel(
            "Incident changes per minute",
            "What the webhooks did to incidents: open, update, refresh, resolve, marks, or none"
            " (a repeat that changed nothing).",
            "short",
            [Query(rate_sum("maintwatch_receiver_incident_changes_total", "action"), "{{action}}")],
            width=8,
        ),
    ]


def delivery(t: Thresholds) -> list[Panel]:
    """Return the delivery panels: the outbox, each channel's sends and how late they land."""
    latency = "maintwatch_receiver_delivery_latency_seconds"
    return [
        Panel(
            "Notifications per minute",
            "Delivery attempts by channel and outcome: sent; retry (tried again after a"
            " backoff); failed (given up); unknown (an SMS that may never have arrived).",
            "short",
            [
                Query(
                    rate_sum("maintwatch_receiver_notifications_total", "channel, outcome"),
                    "{{channel}} {{outcome}}",
                )
            ],
            runbooks=["MaintwatchReceiverNotificationsFailing"],
            width=8,
        ),
        Panel(
            "Delivery latency",
            "Time from queueing a notification to its delivery, per channel: how late pages"
            " reach people, retries and SMS rate limits included.",
            "s",
            [
                Query(quantile(0.5, latency, "channel"), "{{channel}} p50"),
                Query(quantile(0.95, latency, "channel"), "{{channel}} p95"),
            ],
            runbooks=["MaintwatchReceiverOutboxStuck"],
            width=8,
        ),
        Panel(
            "Send call duration p95",
            "One call to a channel's provider (SMTP server, Twilio, chat API). Close to"
            " delivery.send_timeout: the provider is slow and calls time out.",
            "s",
            [
                Query(
                    quantile(0.95, "maintwatch_receiver_send_duration_seconds", "channel"),
                    "{{channel}}",
                )
            ],
            width=8,
        ),
        Panel(
            "Outbox messages by status",
            "Messages not sent: pending (due, in backoff or after quiet hours) and sending;"
            " failed and unknown ones stay until retention prunes them.",
            "short",
            [
                Query(
                    'max by (status) (maintwatch_receiver_outbox_messages{status!="sent"})',
                    "{{status}}",
                )
            ],
            runbooks=["MaintwatchReceiverOutboxStuck"],
        ),
        Panel(
            "Fallbacks and recoveries per hour",
            "Fallback: a message that failed for good, copied to delivery.fallback_channel."
            " Recovered: messages found sending past their lease (a worker died). Checked: SMS"
            " looked up at Twilio before a resend (found: not sent again).",
            "short",
            [
                Query(
                    rate_sum(
                        "maintwatch_receiver_notification_fallbacks_total", "channel, outcome", 3600
                    ),
                    "fallback from {{channel}} ({{outcome}})",
                ),
                Query(
                    rate_sum("maintwatch_receiver_outbox_recovered_total", "action", 3600),
                    "recovered: {{action}}",
                ),
                Query(
                    rate_sum(
                        "maintwatch_receiver_notifications_reconciled_total",
                        "channel, outcome",
                        3600,
                    ),
                    "checked {{channel}}: {{outcome}}",
                ),
            ],
            runbooks=["MaintwatchReceiverNotificationsFailing"],
        ),
    ]


def escalation_and_workers(t: Thresholds) -> list[Panel]:
    """Return the escalation, background-worker, silencer and retention panels."""
    runs = "maintwatch_receiver_worker_runs_total"
    passes = f"sum by (worker) (rate({runs}{RATE_INTERVAL}))"
    lateness = "maintwatch_receiver_escalation_lateness_seconds"
    return [
        Panel(
            "Escalation timers per minute",
            "Due escalation timers handled: acted (a step ran, or an ack lapsed) or ignored"
            " (stale: acknowledged, resolved, or the policy is gone).",
            "short",
            [
                Query(
                    rate_sum("maintwatch_receiver_escalation_timers_total", "result"), "{{result}}"
                )
            ],
            width=8,
        ),
        Panel(
            "Escalation lateness",
            "How late due escalation steps ran, and how long one escalation worker tick takes."
            " Lateness past escalation.overdue_after shows as overdue escalations.",
            "s",
            [
                Query(quantile(0.5, lateness), "late p50"),
                Query(quantile(0.95, lateness), "late p95"),
                Query(
                    quantile(0.95, "maintwatch_receiver_escalation_tick_duration_seconds"),
                    "tick p95",
                ),
            ],
            runbooks=["MaintwatchReceiverEscalationOverdue"],
            width=8,
        ),
        Panel(
            "Time since each worker's last good pass",
            "outbox, escalation and watchdog pass every few seconds; the digest every"
            " digest.poll_interval (1 m), the silencer every alertmanager.interval (30 s),"
            " retention every retention.interval (1 h). A line that keeps climbing past its"
            " interval: that worker is stuck or failing.",
            "s",
            [Query(f"time() - {WORKER_LAST_SUCCESS}", "{{instance}} {{worker}}")],
            runbooks=["MaintwatchReceiverWorkerStalled"],
            width=8,
        ),
        Panel(
            "Failed worker passes",
            "Share of each worker's passes that failed: unavailable (the store or Alertmanager"
            " is down) or error (see the receiver's log).",
            "percentunit",
            [
                # A worker with no failed pass has no such series: it shows as 0, not as nothing.
                Query(
                    f'(sum by (worker) (rate({runs}{{outcome!="ok"}}{RATE_INTERVAL}))'
                    f" or {passes} * 0) / {passes}",
                    "{{worker}}",
                )
            ],
            thresholds=steps(t, "MaintwatchReceiverWorkerFailing"),
            runbooks=["MaintwatchReceiverWorkerFailing"],
            width=8,
        ),
        Panel(
            "Alertmanager silences",
            "Silences held in Alertmanager for acknowledged incidents, changes per hour (create,"
            " extend, expire; rejected: refused by Alertmanager) and failed silencer passes per"
            " hour. Only with alertmanager.url.",
            "short",
            [
                Query("max(maintwatch_receiver_alertmanager_silences)", "held"),
                Query(
                    rate_sum(
                        "maintwatch_receiver_alertmanager_silence_changes_total", "action", 3600
                    ),
                    "{{action}}",
                ),
                Query(
                    rate_sum("maintwatch_receiver_alertmanager_errors_total", "", 3600),
                    "failed passes",
                ),
            ],
            width=8,
        ),
        Panel(
            "Rows pruned by retention per hour",
            "Resolved incidents and finished notifications deleted once older than"
            " retention.resolved_incidents and retention.delivered_notifications.",
            "short",
            [
                Query(
                    rate_sum("maintwatch_receiver_retention_deleted_total", "target", 3600),
                    "{{target}}",
                )
            ],
            width=8,
        ),
    ]


def panels(t: Thresholds) -> list[Panel]:
    """Return the health stats, then the intake, delivery, escalation and worker panels."""
    return [*health(t), *intake(t), *delivery(t), *escalation_and_workers(t)]


BOARD = Board(
    stem="receiver",
    title="maintwatch: receiver",
    description="Are pages getting out, and how fast? Intake, delivery, escalation, workers.",
    panels=panels,
)
