"""`python -m maintwatch.demo [--check]`: build the demo, validate it, become supervisord."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NoReturn

from maintwatch.demo import checks, configs, queues, stack, supervisor, world
from maintwatch.demo.settings import DemoSettings, Layout, SettingsError, from_env

MARKER = ".maintwatch-demo"  # only a directory holding this is ever emptied by a re-run


class DemoError(Exception):
    """The demo cannot be built or started; the message says why and what to do."""


@dataclass
class Plan:
    """What was built: the programs supervisord will run and notes for the user."""

    programs: list[supervisor.Program]
    stack: bool
    redis: bool
    notes: list[str] = field(default_factory=list)
    debian: bool = False  # Debian's Prometheus/Alertmanager: classic UI, no Alertmanager UI


def reset(layout: Layout) -> None:
    """Empty the demo directory for a fresh world; refuse a directory the demo did not make."""
    root = layout.root
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists():
        raise DemoError(
            f"{root} exists, is not empty and was not made by the demo: set MW_DEMO_DIR"
        )
    if root.exists():
        shutil.rmtree(root)
    for directory in (layout.etc, layout.data, layout.logs, layout.run, layout.world):
        directory.mkdir(parents=True, exist_ok=True)
    (root / MARKER).write_text("maintwatch demo directory; rebuilt on every start\n")


def _seed_redis(settings: DemoSettings, now: float, plan_notes: list[str]) -> bool:
    if settings.redis_url is None:
        plan_notes.append("Redis queue demo off (MW_DEMO_REDIS_URL=off)")
        return False
    try:
        jobs = queues.seed(settings.redis_url, settings.redis_prefix, now)
    except queues.QueueSeedError as exc:
        plan_notes.append(f"Redis not reachable ({exc}): queue demo skipped")
        return False
    plan_notes.append(f"Redis {settings.redis_url}: {jobs} demo jobs under {settings.redis_prefix}")
    return True


def build(settings: DemoSettings, tools: checks.Tools, seed_redis: bool) -> Plan:
    """Write the world, every config and the rule files; seed Redis when asked."""
    layout, now = settings.layout, time.time()
    reset(layout)
    built = world.build_world(layout.world, now)
    notes: list[str] = []
    redis = _seed_redis(settings, now, notes) if seed_redis else settings.redis_url is not None
    tokens = configs.write_secrets(layout)
    configs.write_yaml(layout.etc / "exporter.yml", configs.exporter_config(settings, built, redis))
    receiver = configs.receiver_config(settings, tokens, alertmanager=tools.stack)
    configs.write_yaml(layout.etc / "receiver.yml", receiver)
    programs = supervisor.core_programs(settings, built.log)
    if tools.prometheus is not None and tools.alertmanager is not None:
        stack.render_rules(layout.etc / "thresholds.yml", layout.rules)
        configs.write_yaml(layout.etc / "prometheus.yml", stack.prometheus_config(settings))
        am = stack.alertmanager_config(settings, tokens["webhook_token"])
        configs.write_yaml(layout.etc / "alertmanager.yml", am)
        programs += supervisor.stack_programs(settings, tools.prometheus, tools.alertmanager)
    else:
        notes.append(
            "Prometheus/Alertmanager not installed: no alerts will fire. "
            f"Install them with `sudo {checks.INSTALL_HINT}` and start the demo again."
        )
    layout.supervisord_conf.write_text(supervisor.render(layout, programs), encoding="utf-8")
    return Plan(programs, tools.stack, redis, notes, checks.debian_build(tools.prometheus))


def stack_links(settings: DemoSettings, debian: bool) -> list[str]:
    """Return where to see alerts and silences, for the Prometheus/Alertmanager installed."""
    prometheus, alertmanager = settings.url("prometheus"), settings.url("alertmanager")
    amtool = f"amtool --alertmanager.url={alertmanager}"
    if debian:
        return [
            f"  prometheus    {prometheus}/classic/alerts",
            f"  alertmanager  {amtool} alert query   (Debian's build has no web UI)",
            f"                {amtool} silence query (silences made by acks)",
        ]
    return [
        f"  prometheus    {prometheus}/alerts",
        f"  alertmanager  {alertmanager}/#/alerts",
        f"                {amtool} silence query (silences made by acks)",
    ]


def banner(settings: DemoSettings, plan: Plan) -> str:
    """Return what the user sees before supervisord takes over the terminal."""
    layout = settings.layout
    lines = [f"maintwatch demo: running from {layout.root} (Ctrl-C stops everything)"]
    lines.append(f"  exporter      {settings.url('exporter')}/metrics")
    lines.append(f"  receiver      {settings.url('receiver')}/api/v1/incidents")
    lines.append(
        f"                (token: Authorization: Bearer $(cat {layout.secrets}/api_token))"
    )
    if plan.stack:
        lines += stack_links(settings, plan.debian)
    lines.append(f"  logs          {layout.logs}/ (notifications.jsonl, <program>.log)")
    lines += [f"  note: {note}" for note in plan.notes]
    if plan.stack:
        lines.append("Alerts fire within about a minute; each notification is printed below.")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m maintwatch.demo",
        description="Build the demo under var/demo/ and run it under supervisord.",
        epilog="Environment: MW_DEMO_DIR, MW_DEMO_HOST, MW_DEMO_EXPORTER_PORT (9839), "
        "MW_DEMO_RECEIVER_PORT (9840), MW_DEMO_PROMETHEUS_PORT (19090), "
        "MW_DEMO_ALERTMANAGER_PORT (19093), MW_DEMO_REDIS_URL (or 'off'), MW_DEMO_REDIS_PREFIX.",
    )
    parser.add_argument(
        "--check", action="store_true", help="build and validate every config, do not start"
    )
    return parser.parse_args(argv)


def _report(results: list[checks.Check]) -> bool:
    for result in results:
        status = "ok  " if result.ok else "FAIL"
        lines = [line.strip() for line in result.output.splitlines() if line.strip()]
        summary = next((line for line in lines if "SUCCESS" in line), lines[0] if lines else "")
        first = summary if result.ok else result.output
        print(f"{status} {result.name}: {first}", file=sys.stdout if result.ok else sys.stderr)
    return all(r.ok for r in results)


def prepare(args: argparse.Namespace) -> tuple[DemoSettings, checks.Tools, Plan]:
    """Read settings, refuse a busy port, build and validate; raise DemoError on any problem."""
    try:
        settings = from_env()
    except SettingsError as exc:
        raise DemoError(str(exc)) from None
    tools = checks.find_tools()
    if tools.supervisord is None:
        raise DemoError("supervisord not found: run `bash scripts/bootstrap.sh` (installs it)")
    reason = checks.running(settings.layout)
    if reason is not None and args.check:
        # --check rebuilds the directory: under running programs it would wipe their state.
        raise DemoError(
            f"{reason}; or check a fresh copy elsewhere: "
            "MW_DEMO_DIR=/tmp/maintwatch-demo-check bash scripts/demo.sh --check"
        )
    if not args.check:
        services = ["exporter", "receiver"] + (["prometheus", "alertmanager"] * tools.stack)
        problems = checks.busy(settings, services)
        if problems:
            raise DemoError("\n".join(problems))
    try:
        plan = build(settings, tools, seed_redis=not args.check)
    except (stack.RenderFailed, OSError) as exc:
        raise DemoError(f"building the demo failed: {exc}") from exc
    if not _report(checks.validate(settings, tools, plan.stack)):
        raise DemoError(
            f"a generated config is invalid (see above); configs: {settings.layout.etc}"
        )
    return settings, tools, plan


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: build and check, then replace this process with `supervisord -n`."""
    args = parse_args(argv)
    try:
        settings, tools, plan = prepare(args)
    except DemoError as exc:
        print(f"maintwatch demo: {exc}", file=sys.stderr)
        return 1
    if args.check:
        for note in plan.notes:
            print(f"note: {note}")
        print(f"demo configs valid: {settings.layout.etc}")
        return 0
    print(banner(settings, plan), flush=True)
    assert tools.supervisord is not None  # checked in prepare()
    return start(tools.supervisord, settings.layout)


def start(supervisord: str, layout: Layout) -> NoReturn:
    """Replace this process with `supervisord -n` on the demo config."""
    # exec, not a child: Ctrl-C and SIGTERM go straight to supervisord, which stops everything.
    argv = [supervisord, "-n", "-c", str(layout.supervisord_conf)]
    os.execv(supervisord, argv)  # noqa: S606 - an argument list, no shell involved
