"""One customer across four real sources, through the real Engine and Store.

Jane chats (Twilio Flex chat task, which knows her phone and e-mail), then calls (Asterisk
queue_log, caller id in national format), then e-mails (Zendesk ticket, whose requester id the
collector's mapping table ties to her e-mail address), then rates the service (Chatwoot CSAT, her
e-mail in another case). Every source normalizes the key its own way into one: she is one customer
with one path.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
from aiohttp import web

from cxmon.config import loads
from cxmon.engine import Engine
from tests.collectors.webhook import payloads as p
from tests.collectors.webhook.harness import (
    SECRET,
    body_of,
    chatwoot_headers,
    twilio_request,
    until,
    zendesk_headers,
)

JANE = "+447700900123"


def config_text(queue_log: Path) -> str:
    return f"""
[monitor]
windows = ["5m", "60m"]
stale_after = "10m"

[customers]
region = "GB"

[journey]
channels = ["voice", "chat", "email", "survey"]
queues = ["billing", "support", "tickets"]

[[journey.steps]]
name = "enquire"
match = [{{ channel = "chat" }}]

[[journey.steps]]
name = "get_help"
match = [{{ channel = "voice" }}]

[[journey.steps]]
name = "resolve"
match = [{{ channel = "email" }}]

[[journey.steps]]
name = "follow_up"
match = [{{ channel = "survey" }}]

[[collectors]]
type = "webhook"
name = "flex"
adapter = "twilio_taskrouter"
secret = "{SECRET}"
tolerance = "3h"

[[collectors]]
type = "queue_log"
name = "pbx"
path = "{queue_log}"
start = "beginning"
poll_interval = "50ms"

[[collectors]]
type = "webhook"
name = "zd"
adapter = "zendesk"
secret = "{SECRET}"
tolerance = "3h"
queues = {{ "360001" = "tickets" }}
customers = {{ "7881" = "Jane.Doe@example.com" }}

[[collectors]]
type = "webhook"
name = "cw"
adapter = "chatwoot"
secret = "{SECRET}"
tolerance = "3h"
"""


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> None:
    async with http.post(url, data=body, headers=headers) as r:
        assert r.status in (200, 204), await r.text()


async def test_one_customer_one_path_across_four_sources(tmp_path: Path) -> None:
    """Chat, call, e-mail and rating land on one customer key, in order, from four sources."""
    now = time.time()
    t_chat, t_call, t_mail, t_rate = now - 7200, now - 5400, now - 3600, now - 600
    log = tmp_path / "queue_log"
    log.write_text(
        f"{t_call:.0f}|1700000001.1|billing|NONE|ENTERQUEUE||07700900123|1\n"
        f"{t_call + 40:.0f}|1700000001.1|billing|SIP/agent1|CONNECT|40|1700000001.2|3\n"
        f"{t_call + 300:.0f}|1700000001.1|billing|SIP/agent1|COMPLETECALLER|40|260|1\n"
    )
    engine = Engine(loads(config_text(log)), db_path=str(tmp_path / "h.db"))
    app = web.Application()
    for source in engine.sources:
        if hasattr(source, "http_routes"):
            app.add_routes(source.http_routes())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    attributes = (
        '{"channelType":"web","customers":{"email":"jane.doe@example.com","phone":"+44 7700 900123"}}'
    )
    try:
        async with engine, aiohttp.ClientSession() as http:
            await until(lambda: all(h.up for h in engine.health.values()))
            url = base + "/webhooks/flex"
            for params in (
                p.taskrouter(
                    "task-queue.entered",
                    "EV1",
                    "WTchat",
                    t_chat,
                    TaskChannelUniqueName="chat",
                    TaskQueueName="support",
                    TaskAttributes=attributes,
                ),
                p.taskrouter(
                    "reservation.accepted",
                    "EV2",
                    "WTchat",
                    t_chat + 20,
                    TaskChannelUniqueName="chat",
                    TaskQueueName="support",
                    TaskAttributes=attributes,
                ),
            ):
                body, headers = twilio_request(url, params)
                await _post(http, url, body, headers)
            for payload in (
                p.zendesk_ticket("created", "z1", 35436, t_mail, {}, created=t_mail),
                p.zendesk_ticket(
                    "comment_added", "z2", 35436, t_mail + 900, p.zendesk_comment(True), created=t_mail
                ),
            ):
                body = body_of(payload)
                await _post(http, base + "/webhooks/zd", body, zendesk_headers(body))
            body = body_of(
                p.chatwoot_csat(
                    501, 77, t_rate, 2, "Three channels to get one answer", email="JANE.DOE@EXAMPLE.COM"
                )
            )
            await _post(http, base + "/webhooks/cw", body, chatwoot_headers(body))
            await until(lambda: sum(h.events_total for h in engine.health.values()) >= 8)
            path = await engine.customer_path(JANE)
    finally:
        await runner.cleanup()
    assert [(e.source, e.channel, e.kind.value) for e in path] == [
        ("flex", "chat", "arrived"),
        ("flex", "chat", "answered"),
        ("pbx", "voice", "arrived"),
        ("pbx", "voice", "answered"),
        ("pbx", "voice", "resolved"),
        ("zd", "email", "arrived"),
        ("zd", "email", "answered"),
        ("cw", "survey", "feedback"),
    ]
    assert path[-1].reason == "Three channels to get one answer"
