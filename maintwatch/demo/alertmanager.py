"""The recommended Alertmanager config, `examples/alertmanager.yml`, pointed at one receiver.

The demo, the compose stack (`docker/alertmanager/alertmanager.yml`, written by this module's
command line) and the end-to-end test all start from that one file; they change only where the
receiver is, where the webhook token is, and (demo, test) the grouping timers.

    python -m maintwatch.demo.alertmanager --url http://receiver:9840 \\
        --token-file /run/secrets/webhook_token > docker/alertmanager/alertmanager.yml
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from maintwatch.demo.settings import REPO

RECOMMENDED = REPO / "examples" / "alertmanager.yml"
WEBHOOK_PATH = "/webhooks/alertmanager"


def recommended(
    receiver_url: str, token_file: str, timers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return the recommended config sending to `receiver_url` with the token in `token_file`.

    `timers` replaces the top route's group_wait / group_interval / repeat_interval.
    """
    config: dict[str, Any] = yaml.safe_load(RECOMMENDED.read_text(encoding="utf-8"))
    name = config["route"]["receiver"]
    [receiver] = [r for r in config["receivers"] if r["name"] == name]
    for hook in receiver["webhook_configs"]:
        hook["url"] = receiver_url.rstrip("/") + WEBHOOK_PATH
        hook["http_config"]["authorization"]["credentials_file"] = token_file
    config["route"].update(timers or {})
    return config


class _PlainDumper(yaml.SafeDumper):
    """Write shared lists out in full: a generated file reads better without &id001 anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render(config: Mapping[str, Any], source: str) -> str:
    """Return `config` as YAML under a header naming how it was generated."""
    header = (
        f"# Generated from examples/alertmanager.yml (the recommended config) by:\n"
        f"#   {source}\n# Edit the example and generate again; a test checks the two agree.\n"
    )
    body = yaml.dump(dict(config), Dumper=_PlainDumper, sort_keys=False, width=100)
    return header + body


def main(argv: Sequence[str] | None = None) -> int:
    """Print the recommended config for one receiver URL and token file."""
    parser = argparse.ArgumentParser(
        prog="python -m maintwatch.demo.alertmanager",
        description="Print examples/alertmanager.yml pointed at one receiver.",
    )
    parser.add_argument("--url", required=True, help="the receiver's base URL")
    parser.add_argument("--token-file", required=True, help="file with the webhook token")
    args = parser.parse_args(argv)
    source = (
        f"python -m maintwatch.demo.alertmanager --url {args.url} --token-file {args.token_file}"
    )
    sys.stdout.write(render(recommended(args.url, args.token_file), source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
