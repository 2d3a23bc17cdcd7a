"""`maintwatch-exporter`: flags, config (re)loading, signals, and the server's lifetime."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from exporter.collectors.base import Collector, Context
from exporter.collectors.registry import REGISTRY, load_config
from exporter.config import ExporterBase, effective_timing
from exporter.drills import cli as drill_cli
from exporter.drills.cli import live_databases
from exporter.runtime import Runtime
from exporter.server import make_app
from exporter.workers import DaemonDefaultExecutor
from maintwatch import __version__, logs, loop
from maintwatch.cli import (
    add_common_flags,
    print_problems,
    run_until_stopped,
    split_listen_address,
)
from maintwatch.configload import ConfigError

DEFAULT_CONFIG = "maintwatch-exporter.yml"
DEFAULT_LISTEN = ":9839"
DEFAULT_THREADS = 8  # asyncio's own blocking calls (getaddrinfo), shared by every collector


def build_collectors(
    config: ExporterBase, context: Context
) -> list[tuple[Collector[Any], float, float]]:
    """Instantiate every configured collector with its effective interval and timeout."""
    wanted: list[tuple[Collector[Any], float, float]] = []
    for kind, instances in config.instances().items():
        cls = REGISTRY[kind]
        for instance in instances:
            interval, timeout = effective_timing(config, instance)
            wanted.append((cls(instance, context), interval, timeout))
    return wanted


def _context(config: ExporterBase, logger: Any) -> Context:
    return Context(
        logger=logger,
        state_dir=str(config.state_dir) if config.state_dir else None,
        live_databases=live_databases(config),
    )


async def serve(args: argparse.Namespace, config: ExporterBase) -> None:
    """Run until SIGTERM/SIGINT; reload the config on SIGHUP."""
    log = logs.get_logger("exporter")
    # Daemon threads for what asyncio itself runs in threads (DNS lookups): a lookup stuck on
    # a dead resolver must not keep the process alive after SIGTERM.
    asyncio.get_running_loop().set_default_executor(DaemonDefaultExecutor(DEFAULT_THREADS))
    runtime = Runtime(log)
    runner = web.AppRunner(make_app(runtime), access_log=None)
    # Workers and the listening socket are released even when starting or serving fails
    # (a port in use, a bug in a reload), so the process never exits with threads running.
    try:
        await runtime.apply(build_collectors(config, _context(config, log)))
        host, port = split_listen_address(args.listen_address)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        log.info(
            "exporter_started",
            version=__version__,
            listen=f"{host}:{port}",
            config=args.config_file,
            instances=len(runtime.states()),
        )
        await run_until_stopped(lambda: _reload(args.config_file, runtime, log))
        log.info("exporter_stopping")
    finally:
        await runner.cleanup()
        await runtime.close()
        log.info("exporter_stopped")


async def _reload(path: str, runtime: Runtime, log: Any) -> None:
    try:
        config = load_config(path)
    except ConfigError as exc:
        log.error("config_reload_rejected", config=path, problems=exc.problems)
        return
    await runtime.apply(build_collectors(config, _context(config, log)))
    log.info("config_reloaded", config=path, instances=len(runtime.states()))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="maintwatch-exporter", description="Prometheus exporter for maintenance signals."
    )
    add_common_flags(parser, DEFAULT_CONFIG, DEFAULT_LISTEN)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `maintwatch-exporter` (`maintwatch-exporter drill <set>`: a drill now)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["drill"]:
        logs.configure("warn", "logfmt")
        return drill_cli.main(argv[1:])
    args = parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    try:
        config = load_config(Path(args.config_file))
        split_listen_address(args.listen_address)
        event_loop = loop.resolve(args.event_loop)
    except ConfigError as exc:
        return print_problems(exc)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.check_config:
        print(
            f"{args.config_file}: OK ({sum(len(v) for v in config.instances().values())} "
            "collector instances)"
        )
        return 0
    loop.run(serve(args, config), event_loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
