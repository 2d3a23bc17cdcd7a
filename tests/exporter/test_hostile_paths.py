"""Path traversal through file references in the config (globs of backups, logs, certificates).

The rule (docs/reliability.md): a path is the operator's own config, so the exporter reads
where it points, `..` and symlinks included, as long as the directory part is written out
literally. What a glob must not do is climb out of the directory it starts in: a `..` after
a wildcard (`logs/*/../../etc/…`) is rejected at load time, and a backup set's glob matches
names inside `directory` only (it cannot hold `/`, and `..` never matches a directory entry).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from exporter.collectors.apps.collector import AppsCollector
from exporter.collectors.backups.collector import BackupsCollector
from exporter.collectors.base import Context
from exporter.collectors.registry import load_config_text
from maintwatch.configload import ConfigError
from tests.exporter.conftest import refresh


def backup_set(root: Path) -> Path:
    """Make `root/backups` with two dumps, and decoys next to it that must never count."""
    inside = root / "backups"
    inside.mkdir()
    for name in ("db_1.sql.gz", "..db_2.sql.gz"):  # a name starting with '..' is still inside
        (inside / name).write_bytes(gzip.compress(b"-- dump\n"))
    (inside / "nested").mkdir()
    (inside / "nested" / "db_3.sql.gz").write_bytes(b"x")
    for decoy in ("db_9.sql.gz", "..db_9.sql.gz"):
        (root / decoy).write_bytes(b"outside")
    return inside


@pytest.mark.parametrize(
    ("glob", "files"), [("*", 2), ("*.sql.gz", 2), (".*", 1), ("..*", 1), ("..", 0), (".", 0)]
)
async def test_backup_glob_matches_names_inside_the_directory_only(
    tmp_path: Path, context: Context, glob: str, files: int
) -> None:
    directory = backup_set(tmp_path)
    text = f"backups: [{{name: db, directory: {directory}, glob: '{glob}', verify: none}}]"
    config = load_config_text(text, "x.yml").instances()["backups"][0]
    collector = BackupsCollector(config, context)  # type: ignore[arg-type]
    try:
        samples = await refresh(collector)
    finally:
        await collector.close()
    assert samples.get("maintwatch_backup_files", backup="db") == files


@pytest.mark.parametrize("glob", ["../*.sql.gz", "nested/*.sql.gz", "*/../../etc/*"])
def test_backup_glob_with_a_path_is_rejected(glob: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config_text(f"backups: [{{name: db, directory: /srv, glob: '{glob}'}}]", "x.yml")
    assert err.value.problems == [
        "x.yml: backups[0].glob: glob matches file names inside `directory`; it cannot hold '/'"
    ]


async def test_backup_symlink_to_outside_counts_as_that_backup(
    tmp_path: Path, context: Context
) -> None:
    directory = backup_set(tmp_path)
    (directory / "db_link.sql.gz").symlink_to(tmp_path / "db_9.sql.gz")
    text = f"backups: [{{name: db, directory: {directory}, glob: 'db_*', verify: none}}]"
    config = load_config_text(text, "x.yml").instances()["backups"][0]
    collector = BackupsCollector(config, context)  # type: ignore[arg-type]
    try:
        samples = await refresh(collector)
    finally:
        await collector.close()
    # The operator put the link there: it is that backup (as the backups docs say).
    assert samples.get("maintwatch_backup_files", backup="db") == 2


async def test_literal_parent_directory_in_a_log_path_is_followed(
    tmp_path: Path, context: Context
) -> None:
    # An Envoyer-style deploy: the app path is a release, its logs live in ../shared.
    release, shared = tmp_path / "releases" / "7", tmp_path / "releases" / "shared" / "logs"
    release.mkdir(parents=True)
    shared.mkdir(parents=True)
    log = shared / "laravel-2025-05-01.log"
    log.write_text("[2025-05-01 12:00:00] production.ERROR: one\n")
    text = (
        f"apps: [{{name: portal, path: {release}, maintenance_file: null,"
        " logs: [{path: '../shared/logs/laravel-*.log', from_beginning: true}]}]"
    )
    config = load_config_text(text, "x.yml").instances()["apps"][0]
    collector = AppsCollector(config, context)  # type: ignore[arg-type]
    try:
        samples = await refresh(collector)
    finally:
        await collector.close()
    assert samples.get("maintwatch_log_messages_total", app="portal", level="error") == 1


@pytest.mark.parametrize(
    ("section", "location"),
    [
        (
            "apps: [{name: a, path: /var/www/app, maintenance_file: null,"
            " logs: [{path: 'storage/logs/*/../../../../../etc/*.log'}]}]",
            "apps[0].logs",
        ),
        ("slowlog: [{name: m, path: '/var/log/mysql/*/../../../etc/*.log'}]", "slowlog[0].path"),
        ("tls: [{name: t, path: '/etc/ssl/certs/*/../../../root/*.pem'}]", "tls[0]"),
    ],
    ids=["apps-log", "slowlog", "tls-path"],
)
def test_glob_cannot_climb_out_after_a_wildcard(section: str, location: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config_text(section, "x.yml")
    assert any(p.startswith(f"x.yml: {location}") for p in err.value.problems), err.value


async def test_a_symlink_loop_in_a_backup_set_is_skipped_and_counted(
    tmp_path: Path, context: Context
) -> None:
    directory = backup_set(tmp_path)
    loop = directory / "db_loop.sql.gz"
    loop.symlink_to(loop)  # stat() answers ELOOP: "Too many levels of symbolic links"
    text = f"backups: [{{name: db, directory: {directory}, glob: 'db_*', verify: none}}]"
    config = load_config_text(text, "x.yml").instances()["backups"][0]
    collector = BackupsCollector(config, context)  # type: ignore[arg-type]
    try:
        with capture_logs() as logs:
            first = await refresh(collector)
            second = await refresh(collector)
    finally:
        await collector.close()
    for samples in (first, second):
        assert samples.get("maintwatch_backup_files", backup="db") == 1
        assert samples.get("maintwatch_backup_skipped_files", backup="db") == 1
    skipped = [e for e in logs if e["event"] == "backup_files_skipped"]
    assert len(skipped) == 1  # once while the same entries stay bad
    assert skipped[0]["files"] == 1
    assert skipped[0]["example"] == f"{loop}: Too many levels of symbolic links"


async def test_a_symlink_loop_in_a_log_glob_is_skipped_and_counted(
    tmp_path: Path, context: Context
) -> None:
    logs_dir = tmp_path / "storage" / "logs"
    logs_dir.mkdir(parents=True)
    (logs_dir / "laravel-2025-05-01.log").write_text("[2025-05-01 12:00:00] production.ERROR: a\n")
    loop = logs_dir / "laravel-loop.log"
    loop.symlink_to(loop)
    text = (
        f"apps: [{{name: portal, path: {tmp_path}, maintenance_file: null,"
        " logs: [{path: 'storage/logs/laravel-*.log', from_beginning: true}]}]"
    )
    config = load_config_text(text, "x.yml").instances()["apps"][0]
    collector = AppsCollector(config, context)  # type: ignore[arg-type]
    try:
        with capture_logs() as logs:
            first = await refresh(collector)
            second = await refresh(collector)
    finally:
        await collector.close()
    assert first.get("maintwatch_log_messages_total", app="portal", level="error") == 1
    for samples in (first, second):
        assert samples.get("maintwatch_log_skipped_files", app="portal") == 1
    skipped = [e for e in logs if e["event"] == "log_files_skipped"]
    assert len(skipped) == 1
    assert skipped[0]["example"] == f"{loop}: Too many levels of symbolic links"
