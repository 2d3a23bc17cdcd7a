"""Judge a restore (pure): required tables and rows, drift from live, tarball contents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from exporter.drills.model import Check


def table_checks(required: Mapping[str, int], rows: Mapping[str, int | None]) -> list[Check]:
    """Check each required table exists and holds at least its minimum rows."""
    out = []
    for table, minimum in required.items():
        count = rows.get(table)
        if count is None:
            out.append(Check(f"table:{table}", False, f"table {table} is missing"))
        elif count < minimum:
            detail = f"table {table} has {count} rows, fewer than the {minimum} required"
            out.append(Check(f"table:{table}", False, detail))
        else:
            out.append(Check(f"table:{table}", True, f"{count} rows"))
    return out


def live_checks(
    rows: Mapping[str, int | None], live: Mapping[str, int | None], tolerance: float
) -> list[Check]:
    """Compare restored row counts with the live database's within a relative tolerance."""
    out = []
    for table, live_count in live.items():
        restored = rows.get(table)
        name = f"live:{table}"
        if live_count is None:
            out.append(Check(name, False, f"table {table} is missing in the live database"))
        elif restored is None:
            out.append(Check(name, False, f"table {table} is missing in the restore"))
        elif abs(restored - live_count) > tolerance * max(live_count, 1):
            detail = (
                f"table {table}: {restored} rows restored, {live_count} live"
                f" (more than {tolerance:.0%} apart)"
            )
            out.append(Check(name, False, detail))
        else:
            out.append(Check(name, True, f"{restored} rows restored, {live_count} live"))
    return out


def tarball_checks(
    present: Mapping[str, bool],
    files: int,
    size: int,
    previous: tuple[int, int] | None,
    tolerance: float,
) -> list[Check]:
    """Check required paths, and file count and size against the previous good drill."""
    out = [
        Check(f"path:{p}", ok, "present" if ok else f"{p} is not in the archive")
        for p, ok in present.items()
    ]
    if previous is None:
        out.append(Check("files", files > 0, f"{files} files (first drill: nothing to compare)"))
        out.append(Check("size", True, f"{size} bytes (first drill: nothing to compare)"))
        return out
    out.append(_within("files", files, previous[0], tolerance, "files"))
    out.append(_within("size", size, previous[1], tolerance, "bytes"))
    return out


def _within(name: str, now: int, before: int, tolerance: float, unit: str) -> Check:
    ok = abs(now - before) <= tolerance * max(before, 1)
    detail = f"{now} {unit}, previous drill {before}"
    if not ok:
        detail += f" (more than {tolerance:.0%} apart)"
    return Check(name, ok, detail)


def first_failure(checks: Sequence[Check]) -> str:
    """Return the reason for a result: the failed checks' details, joined, or ''."""
    return "; ".join(c.detail for c in checks if not c.ok)
