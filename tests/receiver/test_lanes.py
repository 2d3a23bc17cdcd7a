"""Delivery lanes: a hung or refusing channel never delays another channel's critical page.

The real worker loop runs (real clock); Slack's webhook hangs (a server that reads each request
and never answers), the generic webhook's port refuses connections, and the SMS goes through
the real twilio client to the local stand-in. The critical SMS must arrive while every Slack
request is still held, with the Slack lane at its bound; the latencies with all endpoints
healthy and with the hung neighbours are printed (the benchmark compares them: no test asserts
a time).
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import free_port
from tests.receiver._channel_helpers import Recorded, recording_server, stall
from tests.receiver._helpers import alert, payload, running, wait_for
from tests.receiver._process_helpers import FakeTwilio, fake_twilio, sms_channel_yaml

ANN, BOB = "+14155550101", "+14155550102"
WARNINGS = 6  # more than the Slack lane's slots: its queue backs up behind hung requests
SLOTS = 2


def config(tmp_path: Path, twilio: FakeTwilio, chat_url: str, hook_url: str) -> str:
    """Return a receiver config: critical pages by SMS, Slack and webhook; warnings skip SMS."""
    token = tmp_path / "token"
    token.write_text("tok3n\n")
    return (
        f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
        "channels:\n"
        f"  - {sms_channel_yaml('sms', twilio.url, token)}\n"
        f"  - {{name: chat, type: slack, webhook_url: '{chat_url}/hook'}}\n"
        f"  - {{name: hook, type: webhook, url: '{hook_url}/hook'}}\n"
        "routes:\n"
        "  - {name: pages, matchers: ['severity=\"critical\"'], channels: [sms, chat, hook]}\n"
        "default_route: {channels: [chat, hook]}\n"
        f"delivery: {{concurrency: {SLOTS}, poll_interval: 1s, backoff_initial: 100ms,"
        " backoff_max: 200ms, max_attempts: 1000, send_timeout: 5s}\n"
    )


async def page_latency(
    tmp_path: Path, twilio: FakeTwilio, chat_url: str, hook_url: str, seen: list[Recorded]
) -> tuple[float, int]:
    """Queue warnings for the chat lanes, then one critical incident; return its SMS latency
    and how many requests the chat endpoint had seen when the SMS arrived."""
    tmp_path.mkdir()
    async with running(config(tmp_path, twilio, chat_url, hook_url), run_worker=True) as rx:
        for index in range(WARNINGS):
            body = payload(alert(f"w{index}"), group=f"w{index}", severity="warning")
            assert (await rx.post(body)).status == 200
        # The critical incident comes once the Slack lane is busy with the warnings.
        await wait_for(lambda: len(seen) >= SLOTS, timeout=20, what="Slack lane busy")
        sent = len(twilio.bodies)
        began = time.monotonic()
        assert (await rx.post(payload(alert("c"), group="critical"))).status == 200
        await wait_for(lambda: len(twilio.bodies) > sent, timeout=20, what="the critical SMS")
        latency, held = time.monotonic() - began, len(seen)
        assert twilio.bodies[-1].startswith("CRITICAL DiskFull"), twilio.bodies[-1]
        return latency, held


async def test_a_hung_and_a_refusing_neighbour_do_not_delay_the_critical_sms(
    tmp_path: Path,
) -> None:
    async with fake_twilio() as twilio, recording_server() as healthy:
        calm, _ = await page_latency(
            tmp_path / "healthy", twilio, healthy.url, healthy.url, healthy.requests
        )
        async with recording_server(stall) as hung:
            refused = f"http://127.0.0.1:{free_port()}"
            slowed, held = await page_latency(
                tmp_path / "hung", twilio, hung.url, refused, hung.requests
            )
    # Sent while Slack's requests hung (they time out only after 5 s), and the Slack lane
    # never took more than its slots although more messages were due.
    assert held == SLOTS, held
    print(f"critical SMS: all healthy {calm * 1000:.0f} ms; hung + refused {slowed * 1000:.0f} ms")


async def test_a_recipient_whose_messages_hang_leaves_the_others_theirs(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok3n\n")
    async with fake_twilio() as twilio:
        twilio.hold_to = {ANN}  # Ann's messages hang at the provider
        text = (
            f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
            f"channels: [{sms_channel_yaml('sms', twilio.url, token)}]\n"
            f"people: [{{id: ann, name: Ann, phone: '{ANN}'}},"
            f" {{id: bob, name: Bob, phone: '{BOB}'}}]\n"
            "default_route: {channels: [sms], people: [ann, bob]}\n"
            f"delivery: {{concurrency: {SLOTS}, poll_interval: 1s, send_timeout: 5s}}\n"
        )
        async with running(text, run_worker=True) as rx:
            for index in range(3):
                assert (await rx.post(payload(alert(f"a{index}"), group=f"g{index}"))).status == 200
            await wait_for(
                lambda: [m["to"] for m in twilio.messages] == [BOB] * 3 and twilio.held,
                timeout=20,
                what="Bob's SMS, Ann's held",
            )
            # Ann holds one slot of two: her other two messages wait, Bob's all went.
            assert twilio.held == [ANN], twilio.held
