"""Alerts on the receiver itself: the pager says when it cannot page.

They are only heard if Alertmanager routes them around the receiver they are about
(docs/alertmanager.md, "Alerts about the receiver").
"""

from __future__ import annotations

from rules.defs import AlertDef
from rules.defs_maint import JOB_DOWN

# Delivery outcomes that may have reached nobody; the receiver dashboard counts the same.
FAILED_OUTCOMES = "failed|unknown"
_FAILED_SENDS = f'maintwatch_receiver_notifications_total{{outcome=~"{FAILED_OUTCOMES}",@sel@}}'
_APPLY_FAILURES = "maintwatch_receiver_intake_apply_failures_total{@sel@}"
_FAILED_RUNS = 'maintwatch_receiver_worker_runs_total{outcome!="ok",@sel@}'
_RUNS = "maintwatch_receiver_worker_runs_total{@sel@}"
_WORKER = "job, instance, worker"


def _grown(counter: str, by: str) -> str:
    """Return how much `counter` grew within `@window@`, summed `by` the given labels.

    A labelled counter's series appears at its first increment, which `increase()` cannot see:
    the first failure since the receiver started would never alert. A series Prometheus did
    not have a window ago therefore counts with its whole value.
    """
    return (
        f"sum by ({by}) ((increase({counter}[@window@]) and {counter} offset @window@)"
        f" or ({counter} unless {counter} offset @window@))"
    )


RECEIVER = [
    AlertDef(
        "MaintwatchReceiverDown",
        "receiver",
        JOB_DOWN,
        "Prometheus cannot scrape the maintwatch receiver, so alerts may page nobody.",
        "Receiver job {{ $labels.job }} target {{ $labels.instance }} has not been scraped"
        " successfully for @for@ (no instance means Prometheus has no such target at all).",
    ),
    AlertDef(
        "MaintwatchReceiverNotificationsFailing",
        "receiver",
        f"{_grown(_FAILED_SENDS, 'job, instance, channel')} > @threshold@",
        "The receiver fails to deliver notifications on a channel.",
        "{{ $value | humanize }} notifications via channel {{ $labels.channel }} of"
        " {{ $labels.instance }} failed or ended unknown (maybe never delivered) within the"
        " last @window@, more than @threshold@.",
    ),
    AlertDef(
        "MaintwatchReceiverOutboxStuck",
        "receiver",
        "max by (job) (maintwatch_receiver_outbox_oldest_pending_age_seconds{@sel@}) > @threshold@",
        "A notification has waited in the receiver's outbox too long: pages are not leaving.",
        "The oldest undelivered notification of {{ $labels.job }} was queued"
        " {{ $value | humanizeDuration }} ago, more than @threshold_dur@.",
    ),
    AlertDef(
        "MaintwatchReceiverIntakeLagging",
        "receiver",
        # The oldest waiting webhook, not the last applied batch: a stuck or dead applier
        # applies nothing, so only the waiting rows' age shows it.
        "max by (job) (maintwatch_receiver_intake_oldest_pending_age_seconds{@sel@}) > @threshold@",
        "Accepted webhooks wait too long before they are applied, so pages start late.",
        "The oldest webhook {{ $labels.job }} accepted and has not applied yet has waited"
        " {{ $value | humanizeDuration }}, more than @threshold_dur@, for at least @for@.",
    ),
    AlertDef(
        "MaintwatchReceiverIntakeApplyFailed",
        "receiver",
        f"{_grown(_APPLY_FAILURES, 'job, instance')} > @threshold@",
        "Webhooks the receiver accepted failed to apply, so their alerts may have paged nobody.",
        "{{ $value | humanize }} webhooks accepted by {{ $labels.instance }} failed to apply"
        " within the last @window@. They are kept: `maintwatch-receiver inbox failed` lists"
        " them, `maintwatch-receiver inbox replay` applies them.",
    ),
    AlertDef(
        "MaintwatchReceiverWorkerStalled",
        "receiver",
        "time() - maintwatch_receiver_worker_last_success_timestamp_seconds"
        '{worker=~"@workers@",@sel@} > @threshold@',
        "A receiver worker that paging depends on has not finished a pass lately.",
        "Worker {{ $labels.worker }} on {{ $labels.instance }} last finished a pass without"
        " errors {{ $value | humanizeDuration }} ago, more than @threshold_dur@.",
    ),
    AlertDef(
        "MaintwatchReceiverWorkerLate",
        "receiver",
        # Each worker's own interval: retention passes hourly, the silencer every minute.
        "time() - maintwatch_receiver_worker_last_success_timestamp_seconds"
        '{worker!~"@workers@",@sel@}'
        " > @threshold@ * maintwatch_receiver_worker_interval_seconds{@sel@}",
        "A receiver background worker has missed several of its passes.",
        "Worker {{ $labels.worker }} on {{ $labels.instance }} last finished a pass without"
        " errors {{ $value | humanizeDuration }} ago, more than @threshold@ of its intervals.",
    ),
    AlertDef(
        "MaintwatchReceiverWorkerFailing",
        "receiver",
        f"{_grown(_FAILED_RUNS, _WORKER)} / {_grown(_RUNS, _WORKER)} > @threshold@",
        "Most passes of a receiver background worker fail.",
        "{{ $value | humanizePercentage }} of the passes of worker {{ $labels.worker }} on"
        " {{ $labels.instance }} failed within the last @window@, more than @threshold_pct@.",
    ),
    AlertDef(
        "MaintwatchReceiverEscalationOverdue",
        "receiver",
        "max by (job) (maintwatch_receiver_overdue_timers{@sel@}) > @threshold@",
        "Escalation steps of open incidents are overdue: escalations are not paging on time.",
        "{{ $value }} open incidents of {{ $labels.job }} have an escalation step more than"
        " `overdue_after` late, and have had for at least @for@.",
    ),
]
