"""`python -m maintwatch.initsecrets DIR NAME...`: make each missing secret file, random.

The compose stack runs this once before anything else starts, into the volume every service
mounts at /run/secrets: no secret is ever committed, each installation gets its own, and a
second start keeps the ones it has (a database password must not change under its database).
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def ensure(directory: Path, names: Sequence[str]) -> list[str]:
    """Create `directory/name` for each name that has no non-empty file; return those made."""
    directory.mkdir(parents=True, exist_ok=True)
    made = []
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"secret name {name!r}: use 1-64 of A-Z a-z 0-9 _ . -")
        path = directory / name
        if path.is_file() and path.read_text(encoding="utf-8").strip():
            continue
        # Written beside and renamed: a crash never leaves a half-written secret behind.
        partial = directory / f".{name}.partial"
        partial.write_text(secrets.token_urlsafe(32) + "\n", encoding="utf-8")
        # Readable by every container's user (postgres, grafana, nobody, maintwatch) on the
        # volume only they mount; nobody can change it.
        os.chmod(partial, 0o444)
        os.replace(partial, path)
        made.append(name)
    return made


def main(argv: Sequence[str] | None = None) -> int:
    """Create the missing secrets and say which were made."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print("usage: python -m maintwatch.initsecrets DIR NAME...", file=sys.stderr)
        return 2
    try:
        made = ensure(Path(args[0]), args[1:])
    except (ValueError, OSError) as exc:
        print(f"initsecrets: {exc}", file=sys.stderr)
        return 1
    kept = [n for n in args[1:] if n not in made]
    print(f"initsecrets: created {', '.join(made) or 'none'}; kept {', '.join(kept) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
