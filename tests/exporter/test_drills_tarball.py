"""Tarball drills: extract into a scratch directory, check paths, count and size."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
import zstandard

from exporter.drills.config import RestoreConfig
from tests.exporter._drills_helpers import drill, restore_config, run


def tarball(path: Path, files: dict[str, bytes], compression: str = "gz") -> Path:
    """Write a tar archive of `files` (name → content), gzip'd or zstd'ed."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    body = raw.getvalue()
    if compression == "gz":
        import gzip

        body = gzip.compress(body)
    elif compression == "zst":
        body = zstandard.ZstdCompressor().compress(body)
    path.write_bytes(body)
    return path


SITE = {
    "app/.env": b"APP_KEY=x\n",
    "app/storage/app/public/logo.png": b"\x89PNG" + b"x" * 5000,
    "app/public/index.php": b"<?php echo 1;\n",
}


def config(scratch: Path, **fields: object) -> RestoreConfig:
    """Return a tarball drill config."""
    base = {"engine": "tarball", "directory": str(scratch), "paths": ["app/.env", "app/public"]}
    return restore_config(**{**base, **fields})


@pytest.mark.parametrize("compression", ["gz", "zst", "none"])
def test_good_tarball_extracts_checks_and_removes_scratch(tmp_path: Path, compression: str) -> None:
    archive = tarball(tmp_path / "files.tar", SITE, compression)
    scratch = tmp_path / "scratch"
    result = run(drill(config(scratch), tmp_path / "state"), archive)
    assert result.ok, result.reason
    assert (result.files, result.size) == (3, sum(len(v) for v in SITE.values()))
    assert not scratch.exists()


def test_missing_path_and_shrunk_archive_fail(tmp_path: Path) -> None:
    scratch, state = tmp_path / "scratch", tmp_path / "state"
    assert run(drill(config(scratch), state), tarball(tmp_path / "a.tar.gz", SITE)).ok
    smaller = {"app/.env": b"APP_KEY=x\n"}
    result = run(drill(config(scratch), state), tarball(tmp_path / "b.tar.gz", smaller))
    assert not result.ok
    assert result.reason == (
        "app/public is not in the archive; 1 files, previous drill 3 (more than 20% apart);"
        " 10 bytes, previous drill 5028 (more than 20% apart)"
    )


def test_refuses_a_directory_it_did_not_create(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "precious.txt").write_text("keep me")
    result = run(drill(config(scratch), tmp_path / "state"), tarball(tmp_path / "a.tgz", SITE))
    assert result.reason == (
        f"refused: directory {scratch} exists without the drill's marker file .maintwatch-drill:"
        " the drill did not create it and will not extract over it"
    )
    assert (scratch / "precious.txt").read_text() == "keep me"


def test_corrupt_gzip_stops_the_restore(tmp_path: Path) -> None:
    archive = tarball(tmp_path / "a.tar.gz", SITE)
    archive.write_bytes(archive.read_bytes()[:-12])
    result = run(drill(config(tmp_path / "s"), tmp_path / "state"), archive)
    assert not result.ok
    assert result.reason.startswith("gzip member 1 truncated (unexpected end of file); restore")
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"engine": "tarball"}, "engine tarball needs `directory`"),
        ({"engine": "mariadb"}, "engine mariadb needs `scratch`"),
        (
            {"engine": "postgres", "scratch": {"dsn": "mysql://u@h/x"}},
            "scratch.dsn: driver postgres needs a URL starting with postgresql://",
        ),
        (
            {
                "engine": "mariadb",
                "scratch": {"dsn": "mysql://u@h/shop"},
                "live": {"dsn": "mysql://u@h/shop"},
            },
            "scratch and live name the same database",
        ),
        ({"engine": "tarball", "directory": "/x", "paths": ["../etc"]}, "without '..'"),
    ],
)
def test_config_errors_name_the_problem(fields: dict[str, object], message: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as info:
        RestoreConfig.model_validate(fields)
    assert message in str(info.value)
