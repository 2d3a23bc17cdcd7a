"""`maintwatch-receiver`: serve (default), `routes`, `oncall`, `inbox`, --check-config."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import HttpUrl, TypeAdapter, ValidationError

from maintwatch import __version__, logs, loop
from maintwatch.cli import (
    add_common_flags,
    print_problems,
    run_until_stopped,
    split_listen_address,
)
from maintwatch.configload import ConfigError
from receiver.app import make_app
from receiver.appkeys import GUARD
from receiver.config import ReceiverBase, load_config
from receiver.connections import GuardedSite, exception_handler
from receiver.intake import failed
from receiver.intake.failed_report import listing_json, listing_text, outcome, replay_totals
from receiver.oncall.people import Directory, who_is_on_call
from receiver.routing.matchers import parse_labels
from receiver.routing.routes import compile_routes, explain, gaps
from receiver.store import StoreUnavailable

DEFAULT_CONFIG = "maintwatch-receiver.yml"


def with_flags(args: argparse.Namespace, config: ReceiverBase) -> ReceiverBase:
    """Apply command-line overrides of the config (`--alertmanager.url`)."""
    if not args.alertmanager_url:
        return config
    try:
        url = TypeAdapter(HttpUrl).validate_python(args.alertmanager_url)
    except ValidationError as exc:
        raise ValueError(f"--alertmanager.url: {exc.errors()[0]['msg']}") from None
    alertmanager = config.alertmanager.model_copy(update={"url": url})
    return config.model_copy(update={"alertmanager": alertmanager})


def _listen(args: argparse.Namespace, config: ReceiverBase) -> tuple[str, int]:
    return split_listen_address(args.listen_address or config.listen)


async def _start(args: argparse.Namespace, config: ReceiverBase, log: Any) -> web.AppRunner:
    host, port = _listen(args, config)
    app = make_app(config, log)
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=config.server.keepalive_timeout)
    await runner.setup()
    await GuardedSite(runner, host, port, app[GUARD]).start()
    if config.webhook.auth == "none":
        log.warning(
            "webhook_unauthenticated",
            reason="webhook.auth: none: anyone who can reach the port can open incidents",
        )
    log.info(
        "receiver_started",
        version=__version__,
        listen=f"{host}:{port}",
        config=args.config_file,
        store=config.store.type,
        channels=len(config.channel_configs),
        routes=len(config.routes),
    )
    for labels in routing_gaps(config):
        log.warning("routing_pages_nobody", labels=labels)
    return runner


def routing_gaps(config: ReceiverBase) -> list[str]:
    """Return, as `{a="b"}` text, label sets whose incidents no route pages anyone for."""
    routes = compile_routes(config.routes, config.default_route)
    return [
        "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
        for labels in gaps(routes, config.severity.label, archives(config))
    ]


def archives(config: ReceiverBase) -> frozenset[str]:
    """Return the channels that reach no person (file channels: archives, audit trails)."""
    return frozenset(c.name for c in config.channel_configs if c.type == "file")


async def serve(args: argparse.Namespace, config: ReceiverBase) -> None:
    """Run until SIGTERM/SIGINT; on SIGHUP validate the config and restart with it."""
    log = logs.get_logger("receiver")
    asyncio.get_running_loop().set_exception_handler(exception_handler(log))
    running = [await _start(args, config, log)]

    async def reload() -> None:
        try:
            new = with_flags(args, load_config(args.config_file))
        except ConfigError as exc:
            log.error("config_reload_rejected", config=args.config_file, problems=exc.problems)
            return
        # Channels, routes and the store all come from the config: rebuild the app. Alertmanager
        # retries the few webhooks that meet the closed port.
        await running[0].cleanup()
        running[0] = await _start(args, new, log)
        log.info("config_reloaded", config=args.config_file)

    await run_until_stopped(reload)
    log.info("receiver_stopping")
    await running[0].cleanup()
    log.info("receiver_stopped")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="maintwatch-receiver",
        description="Alertmanager webhook receiver: incidents, routing and paging.",
    )
    add_common_flags(parser, DEFAULT_CONFIG, "")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--alertmanager.url",
        dest="alertmanager_url",
        help="Alertmanager to silence acknowledged incidents in (overrides alertmanager.url)",
    )
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the receiver (the default)")
    routes = commands.add_parser("routes", help="show which route a label set takes, and why")
    routes.add_argument("--labels", required=True, help="e.g. 'severity=critical,team=ops'")
    oncall = commands.add_parser("oncall", help="show who is on call, now or at --at")
    oncall.add_argument("--schedule", help="only this schedule (default: all)")
    oncall.add_argument("--at", help="ISO 8601; without offset: the schedule's local time")
    _inbox_parsers(commands.add_parser("inbox", help="list and replay webhooks that failed"))
    return parser.parse_args(argv)


def _inbox_parsers(inbox: argparse.ArgumentParser) -> None:
    actions = inbox.add_subparsers(dest="inbox_command", required=True, metavar="{failed,replay}")
    failed = actions.add_parser(
        "failed", help="list the accepted webhooks that failed to apply (kept in the inbox)"
    )
    failed.add_argument("--json", action="store_true", help="print one JSON array")
    replay = actions.add_parser(
        "replay", help="apply failed webhooks again, in order; forget those that apply"
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--seq", type=_seq, nargs="+", action="extend", metavar="N", help="these rows (seq)"
    )
    which.add_argument("--all", action="store_true", help="every failed row")
    replay.add_argument(
        "--dry-run", action="store_true", help="apply, show the outcome, roll everything back"
    )
    for command in (failed, replay):
        # Also after the subcommand; SUPPRESS keeps the value given before it otherwise.
        command.add_argument(
            "--config.file", dest="config_file", default=argparse.SUPPRESS, help="YAML config"
        )


def _seq(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not an inbox seq (a positive integer)")
    return int(text)


def _routes(config: ReceiverBase, labels_text: str) -> int:
    try:
        labels = parse_labels(labels_text)
    except ValueError as exc:
        print(f"--labels: {exc}", file=sys.stderr)
        return 2
    routes = compile_routes(config.routes, config.default_route)
    for line in explain(routes, labels, archives(config)):
        print(line)
    return 0


def _oncall(config: ReceiverBase, at: str | None, schedule: str | None) -> int:
    directory = Directory(config.people, config.schedules)
    try:
        answers = who_is_on_call(directory, datetime.now(UTC), at, schedule)
    except ValueError as exc:
        print(f"oncall: {exc}", file=sys.stderr)
        return 2
    for item in answers:
        who = ", ".join(f"{p.name} [{p.id}]" for p in item.people) or "nobody"
        data = item.to_dict()
        until = f" until {data['until']}" if data["until"] else ""
        print(f"{item.schedule} ({item.timezone}) at {data['at']}: {who}{until}")
    if not answers:
        print("no schedules configured")
    return 0


def _inbox(config: ReceiverBase, args: argparse.Namespace) -> int:
    command = f"inbox {args.inbox_command}"
    try:
        where = failed.where(config)
        if args.inbox_command == "failed":
            rows = asyncio.run(failed.list_failed(config))
            print(listing_json(rows) if args.json else "\n".join(listing_text(rows, where)))
            return 0
        seqs = None if args.all else args.seq
        results = asyncio.run(
            failed.replay(
                config,
                seqs,
                args.dry_run,
                lambda item: print(outcome(item, args.dry_run), flush=True),
            )
        )
    except failed.Refused as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2
    except (failed.Unavailable, StoreUnavailable) as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    print(replay_totals(results, args.dry_run))
    return 1 if any(item.error is not None for item in results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `maintwatch-receiver`."""
    args = parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    try:
        config = with_flags(args, load_config(args.config_file))
        _listen(args, config)
        event_loop = loop.resolve(args.event_loop)
    except ConfigError as exc:
        return print_problems(exc)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check_config:
        print(
            f"{args.config_file}: OK ({len(config.channel_configs)} channels, "
            f"{len(config.routes)} routes, store {config.store.type})"
        )
        for labels in routing_gaps(config):
            print(
                f"{args.config_file}: warning: routes: incidents labelled {labels} page nobody"
                " (only audit routes, file channels or routes naming nobody match them)",
                file=sys.stderr,
            )
        return 0
    if args.command == "routes":
        return _routes(config, args.labels)
    if args.command == "oncall":
        return _oncall(config, args.at, args.schedule)
    if args.command == "inbox":
        return _inbox(config, args)
    loop.run(serve(args, config), event_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
