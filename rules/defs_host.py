"""Alerts on the exporters people already run: node, blackbox, postgres/mysqld, `up`."""

from __future__ import annotations

from rules.defs import AlertDef

_FS = 'fstype!~"tmpfs|overlay|squashfs|ramfs",@sel@'

HOST = [
    AlertDef(
        "HostCPUHigh",
        "host",
        "1 - avg by (job, instance)"
        ' (rate(node_cpu_seconds_total{mode="idle",@sel@}[@window@])) > @threshold@',
        "A host's CPU is busier than its threshold.",
        "CPU use on {{ $labels.instance }} is {{ $value | humanizePercentage }}, above"
        " @threshold_pct@ for at least @for@.",
    ),
    AlertDef(
        "HostMemoryHigh",
        "host",
        "1 - node_memory_MemAvailable_bytes{@sel@} / (node_memory_MemTotal_bytes{@sel@} > 0)"
        " > @threshold@",
        "A host is running out of memory.",
        "Memory use on {{ $labels.instance }} is {{ $value | humanizePercentage }}, above"
        " @threshold_pct@ for at least @for@.",
    ),
    AlertDef(
        "HostDiskSpaceLow",
        "host",
        f"node_filesystem_avail_bytes{{{_FS}}} / (node_filesystem_size_bytes{{{_FS}}} > 0)"
        " < @threshold@",
        "A filesystem is almost full.",
        "Filesystem {{ $labels.mountpoint }} on {{ $labels.instance }} has"
        " {{ $value | humanizePercentage }} free, below @threshold_pct@.",
    ),
    AlertDef(
        "TargetDown",
        "host",
        "up{@sel@} == 0",
        "Prometheus cannot scrape a target: the host or service is unreachable.",
        "Target {{ $labels.instance }} of job {{ $labels.job }} has been unreachable for at"
        " least @for@.",
    ),
    AlertDef(
        "EndpointDown",
        "host",
        "@sli_metric@{@sel@} == 0",
        "A blackbox probe of a public endpoint fails.",
        "The blackbox probe of {{ $labels.instance }} (job {{ $labels.job }}) has failed for"
        " at least @for@.",
    ),
    AlertDef(
        "PostgresConnectionsHigh",
        "host",
        "sum by (job, instance) (pg_stat_activity_count{@sel@})"
        " / on (job, instance)"
        " (max by (job, instance) (pg_settings_max_connections{@sel@}) > 0) > @threshold@",
        "A PostgreSQL server uses most of its connection limit (postgres_exporter).",
        "PostgreSQL {{ $labels.instance }} uses {{ $value | humanizePercentage }} of"
        " max_connections, above @threshold_pct@.",
    ),
    AlertDef(
        "MySQLConnectionsHigh",
        "host",
        "max by (job, instance) (mysql_global_status_threads_connected{@sel@})"
        " / on (job, instance)"
        " (max by (job, instance) (mysql_global_variables_max_connections{@sel@}) > 0)"
        " > @threshold@",
        "A MySQL/MariaDB server uses most of its connection limit (mysqld_exporter).",
        "MySQL/MariaDB {{ $labels.instance }} uses {{ $value | humanizePercentage }} of"
        " max_connections, above @threshold_pct@.",
    ),
    AlertDef(
        "HTTPErrorRatioHigh",
        "host",
        "job:http_requests:error_ratio_rate5m{@sel@} > @threshold@",
        "Too many HTTP requests fail with a server error.",
        "{{ $value | humanizePercentage }} of the requests of {{ $labels.job }} failed over"
        " the last 5 minutes, above @threshold_pct@.",
    ),
]
