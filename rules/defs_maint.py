"""Alerts on maintwatch's own metrics: backups, queues, databases, TLS, apps, the watchers."""

from __future__ import annotations

from rules.defs import AlertDef

_SUP = "job, instance, supervisor, group"
# STOPPED is chosen (`autostart=false`, `supervisorctl stop`): such processes are not expected
# to run; BACKOFF, EXITED, FATAL and UNKNOWN are failures.
_TOTAL = f'sum by ({_SUP}) (maintwatch_supervisor_processes{{state!~"(?i)stopped",@sel@}})'
_RUNNING = f'sum by ({_SUP}) (maintwatch_supervisor_processes{{state=~"(?i)running",@sel@}})'
# The chain's earliest expiry when it is earlier than the leaf's, else the leaf's.
_NOT_AFTER = (
    "((maintwatch_tls_chain_not_after_timestamp_seconds{@sel@}"
    " < maintwatch_tls_cert_not_after_timestamp_seconds{@sel@})"
    " or maintwatch_tls_cert_not_after_timestamp_seconds{@sel@})"
)
# Failed jobs come from Laravel's `failed_jobs` table (by `database`) and from the failed
# sets of Redis queue layouts (by `connection`): both read what is stored, so both survive an
# exporter restart, unlike the watermark counter.
_SQL_Q = "job, instance, database, queue"
_REDIS_Q = "job, instance, connection, queue"
_FAILED_ROWS = "maintwatch_failed_jobs_rows{@sel@}"
_SQL_NEWEST_FAILURE = "maintwatch_failed_jobs_last_timestamp_seconds{@sel@}"
_REDIS_FAILED = 'maintwatch_queue_jobs{state="failed",@sel@}'
_ERROR_LEVELS = 'level=~"(?i)error|critical|alert|emergency"'

BACKUPS = [
    AlertDef(
        "BackupTooOld",
        "backups",
        "(time() - maintwatch_backup_last_timestamp_seconds{@sel@})"
        " > @threshold@ * maintwatch_backup_max_age_seconds{@sel@}"
        " and on (job, instance, backup) maintwatch_backup_files{@sel@} > 0",
        "The newest backup of a set is older than the set's expected cadence.",
        "The newest backup of set {{ $labels.backup }} on {{ $labels.instance }} is"
        " {{ $value | humanizeDuration }} old, more than @threshold@ × its expected"
        " maximum age (maintwatch_backup_max_age_seconds).",
    ),
    AlertDef(
        "BackupMissing",
        "backups",
        "maintwatch_backup_files{@sel@} <= @threshold@",
        "A backup set has no backup files at all.",
        "Backup set {{ $labels.backup }} on {{ $labels.instance }} holds"
        " {{ $value }} files: there is nothing to restore from.",
    ),
    AlertDef(
        "BackupVerifyFailed",
        "backups",
        "maintwatch_backup_last_verify_success{@sel@} == 0",
        "The newest backup of a set failed its integrity check.",
        "The newest file of backup set {{ $labels.backup }} on {{ $labels.instance }}"
        " failed its integrity check (gunzip -t / pg_restore --list); it cannot be restored.",
    ),
    AlertDef(
        "BackupSizeDropped",
        "backups",
        "maintwatch_backup_last_size_bytes{@sel@}"
        " < @threshold@ * maintwatch_backup_previous_size_bytes{@sel@}",
        "The newest backup is much smaller than the one before it.",
        "The newest backup of set {{ $labels.backup }} on {{ $labels.instance }} is"
        " {{ $value | humanize1024 }}B, less than @threshold_pct@ of the previous one.",
    ),
    AlertDef(
        "BackupSizeJumped",
        "backups",
        "maintwatch_backup_last_size_bytes{@sel@}"
        " > @threshold@ * maintwatch_backup_previous_size_bytes{@sel@}"
        " and on (job, instance, backup) maintwatch_backup_previous_size_bytes{@sel@} > 0",
        "The newest backup is much larger than the one before it.",
        "The newest backup of set {{ $labels.backup }} on {{ $labels.instance }} is"
        " {{ $value | humanize1024 }}B, more than @threshold@ × the previous one.",
    ),
    AlertDef(
        "BackupRotationBroken",
        "backups",
        "(time() - maintwatch_backup_oldest_timestamp_seconds{@sel@})"
        " > maintwatch_backup_retention_seconds{@sel@} + @threshold@"
        " and on (job, instance, backup) maintwatch_backup_retention_seconds{@sel@} > 0",
        "Old backups are not being deleted: the oldest is past the retention period.",
        "The oldest backup of set {{ $labels.backup }} on {{ $labels.instance }} is"
        " {{ $value | humanizeDuration }} old, more than its retention plus @threshold_dur@.",
    ),
    AlertDef(
        "BackupVolumeFillingUp",
        "backups",
        "maintwatch_backup_volume_free_bytes{@sel@} > 0"
        " and predict_linear(maintwatch_backup_volume_free_bytes{@sel@}[@window@], @threshold@)"
        " < 0",
        "The volume holding a backup set will be full soon at the current rate.",
        "The volume of backup set {{ $labels.backup }} on {{ $labels.instance }} has"
        " {{ $value | humanize1024 }}B free and, at the rate of the last @window@, fills up"
        " within @threshold_dur@.",
    ),
]

QUEUES = [
    AlertDef(
        "QueueBacklogHigh",
        "queues",
        'sum by (job, instance, connection, queue) (maintwatch_queue_jobs{state="pending",@sel@})'
        " > @threshold@",
        "A queue has more pending jobs than its threshold.",
        "Queue {{ $labels.queue }} ({{ $labels.connection }}) has {{ $value }} pending jobs,"
        " above @threshold@.",
    ),
    AlertDef(
        "QueueBacklogGrowing",
        "queues",
        "sum by (job, instance, connection, queue)"
        ' (deriv(maintwatch_queue_jobs{state="pending",@sel@}[@window@])) * 60 > @threshold@',
        "A queue's backlog keeps growing: workers are not keeping up.",
        "The backlog of queue {{ $labels.queue }} ({{ $labels.connection }}) grows by"
        " {{ $value | humanize }} jobs per minute and has grown for at least @for@.",
    ),
    AlertDef(
        "QueueOldestJobTooOld",
        "queues",
        "(time() - maintwatch_queue_oldest_job_timestamp_seconds{@sel@}) > @threshold@"
        " and on (job, instance, connection, queue)"
        " maintwatch_queue_oldest_job_timestamp_seconds{@sel@} > 0",
        "The oldest pending job of a queue has waited too long.",
        "The oldest pending job on queue {{ $labels.queue }} ({{ $labels.connection }}) was"
        " enqueued {{ $value | humanizeDuration }} ago, more than @threshold_dur@.",
    ),
    AlertDef(
        "QueueWorkersDown",
        "queues",
        f"{_TOTAL} > 0 unless on ({_SUP}) ({_RUNNING} > 0)",
        "No worker process of a Supervisor group is running.",
        "None of the {{ $value }} processes of Supervisor group {{ $labels.group }} on"
        " {{ $labels.supervisor }} that are not STOPPED on purpose is RUNNING: queued jobs"
        " are not being processed.",
    ),
    AlertDef(
        "QueueWorkersMissing",
        "queues",
        f"{_TOTAL} - ({_RUNNING} or {_TOTAL} * 0) >= @threshold@",
        "Fewer worker processes are running than Supervisor is configured for.",
        "Processes neither RUNNING nor STOPPED in Supervisor group {{ $labels.group }} on"
        " {{ $labels.supervisor }}: {{ $value }}.",
    ),
    AlertDef(
        "FailedJobsAppearing",
        "queues",
        # A failed_at ahead of the clock (an app time zone other than UTC) is not "recent".
        f"(time() - {_SQL_NEWEST_FAILURE}) < @window_seconds@ >= -60"
        " or increase(maintwatch_failed_jobs_total{@sel@}[@window@]) > @threshold@"
        f" or sum by ({_REDIS_Q}) (delta({_REDIS_FAILED}[@window@])) > @threshold@",
        "Jobs are failing: new failed jobs within the window.",
        "Jobs of queue {{ $labels.queue }} ({{ $labels.database }}{{ $labels.connection }})"
        " on {{ $labels.instance }} failed within the last @window@.",
    ),
    AlertDef(
        "FailedJobsBurst",
        "queues",
        f"sum by ({_SQL_Q}) (increase(maintwatch_failed_jobs_total{{@sel@}}[@window@]))"
        " > @threshold@"
        f" or sum by ({_SQL_Q}) (delta({_FAILED_ROWS}[@window@])) > @threshold@"
        f" or sum by ({_REDIS_Q}) (delta({_REDIS_FAILED}[@window@])) > @threshold@",
        "Many jobs failed within a few minutes.",
        "Jobs of queue {{ $labels.queue }} ({{ $labels.database }}{{ $labels.connection }})"
        " that failed in the last @window@: {{ $value | humanize }}, more than @threshold@.",
    ),
    AlertDef(
        "FailedJobsStanding",
        "queues",
        f"sum by ({_SQL_Q}) ({_FAILED_ROWS}) > @threshold@"
        f" or sum by ({_REDIS_Q}) ({_REDIS_FAILED}) > @threshold@",
        "Failed jobs are kept, waiting to be retried or forgotten.",
        "Queue {{ $labels.queue }} ({{ $labels.database }}{{ $labels.connection }}) on"
        " {{ $labels.instance }} holds {{ $value }} failed jobs and has for at least @for@:"
        " retry them (`queue:retry`) or forget them once understood.",
    ),
]

DATABASES = [
    AlertDef(
        "DatabaseConnectionsHigh",
        "databases",
        "sum by (job, instance, database) (maintwatch_db_connections{@sel@})"
        " / on (job, instance, database)"
        " (max by (job, instance, database) (maintwatch_db_max_connections{@sel@}) > 0)"
        " > @threshold@",
        "A database uses most of its connection limit.",
        "Database {{ $labels.database }} uses {{ $value | humanizePercentage }} of its"
        " max_connections, above @threshold_pct@.",
    ),
    AlertDef(
        "DatabaseSlowStatements",
        "databases",
        "maintwatch_db_slow_statements{@sel@} > @threshold@",
        "Statements with a mean time above the slow threshold are running.",
        "Database {{ $labels.database }} has {{ $value }} statements whose mean time exceeds"
        " the slow threshold (100ms by default, pg_stat_statements).",
    ),
    AlertDef(
        "DatabaseSlowQueriesRising",
        "databases",
        "rate(maintwatch_db_slow_queries_total{@sel@}[@window@]) * 60 > @threshold@"
        " and rate(maintwatch_db_slow_queries_total{@sel@}[@window@])"
        " > @ratio@ * rate(maintwatch_db_slow_queries_total{@sel@}[@baseline@])",
        "Slow queries are happening much more often than usual.",
        "Database {{ $labels.database }} logs {{ $value | humanize }} slow queries per minute,"
        " more than @ratio@ times its rate over the last @baseline@.",
    ),
]

TLS = [
    AlertDef(
        "TLSCertificateExpiringSoon",
        "tls",
        f"{_NOT_AFTER} - time() < @threshold@ > 0",
        "A TLS certificate (leaf or chain) expires soon.",
        "The certificate chain of {{ $labels.target }} expires in"
        " {{ $value | humanizeDuration }}, within @threshold_dur@.",
    ),
    AlertDef(
        "TLSCertificateExpired",
        "tls",
        f"time() - {_NOT_AFTER} >= @threshold@",
        "A TLS certificate (leaf or chain) has expired.",
        "The certificate chain of {{ $labels.target }} expired"
        " {{ $value | humanizeDuration }} ago; clients reject it.",
    ),
    AlertDef(
        "TLSCertificateNotVerified",
        "tls",
        "maintwatch_tls_cert_verified{@sel@} == 0",
        "A TLS certificate does not verify against the trust store or the host name.",
        "The certificate of {{ $labels.target }} does not verify (chain or host name):"
        " clients that check certificates refuse the connection.",
    ),
    AlertDef(
        "TLSProbeFailed",
        "tls",
        "maintwatch_tls_probe_success{@sel@} == 0",
        "A TLS endpoint or certificate file could not be read.",
        "maintwatch could not complete the TLS handshake with, or read the certificate file"
        " of, {{ $labels.target }}.",
    ),
]

APP = [
    AlertDef(
        "AppMaintenanceModeTooLong",
        "app",
        "(time() - maintwatch_app_maintenance_since_timestamp_seconds{@sel@}) > @threshold@"
        " and on (job, instance, app) maintwatch_app_maintenance_mode{@sel@} == 1",
        "An application has been in maintenance mode longer than the planned window.",
        "Application {{ $labels.app }} on {{ $labels.instance }} has been down for maintenance"
        " for {{ $value | humanizeDuration }}, longer than @threshold_dur@.",
    ),
    AlertDef(
        "AppErrorRateHigh",
        "app",
        "sum by (job, instance, app)"
        f" (rate(maintwatch_log_messages_total{{{_ERROR_LEVELS},@sel@}}[@window@])) * 60"
        " > @threshold@",
        "An application logs more errors per minute than its threshold.",
        "Application {{ $labels.app }} on {{ $labels.instance }} logs"
        " {{ $value | humanize }} errors per minute, above @threshold@.",
    ),
    AlertDef(
        "HealthCheckFailing",
        "app",
        "maintwatch_http_probe_success{@sel@} == 0",
        "A health endpoint is failing.",
        "Health check {{ $labels.target }} has been failing for at least @for@.",
    ),
    AlertDef(
        "HealthCheckSlow",
        "app",
        "maintwatch_http_probe_duration_seconds{@sel@} > @threshold@",
        "A health endpoint answers slower than its response-time target.",
        "Health check {{ $labels.target }} took {{ $value | humanizeDuration }},"
        " above @threshold_dur@, for at least @for@.",
    ),
]

# A scrape job whose targets fail, or that Prometheus does not have at all (`absent`).
JOB_DOWN = 'up{job=~"@job@.*",@sel@} == 0 or absent(up{job="@job@",@sel@})'

WATCHERS = [
    AlertDef(
        "MaintwatchCollectorDown",
        "maintwatch",
        "maintwatch_collector_up{@sel@} == 0",
        "A maintwatch collector cannot read its source, so its alerts are blind.",
        "Collector {{ $labels.collector }}/{{ $labels.name }} on {{ $labels.instance }} has"
        " failed every refresh for at least @for@; its measured metrics are missing.",
    ),
    AlertDef(
        "MaintwatchExporterDown",
        "maintwatch",
        JOB_DOWN,
        "Prometheus cannot scrape the maintwatch exporter, so maintenance alerts are blind.",
        "Job {{ $labels.job }} target {{ $labels.instance }} has not been scraped"
        " successfully for @for@ (no instance means Prometheus has no such target at all).",
    ),
    AlertDef(
        "Watchdog",
        "maintwatch",
        "vector(1)",
        "Always firing: proves the alerting pipeline works end to end.",
        "This alert always fires. The receiver treats it as a dead man's switch: when it"
        " stops arriving, Prometheus or Alertmanager is broken.",
    ),
]

ALERTS = [*BACKUPS, *QUEUES, *DATABASES, *TLS, *APP, *WATCHERS]
