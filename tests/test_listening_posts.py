"""Listening posts: feedback from the helpdesks reaches the Feedback step (CSAT, response rate, the
customer's words), and a low score is a strike."""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
from aiohttp import web

from collectors.webhook import WebhookSource
from cxmon.config import loads
from cxmon.engine import Engine
from cxmon.events import ContactEvent, EventKind
from cxmon.windows import Aggregator
from tests.collectors.webhook import payloads as p
from tests.collectors.webhook.harness import SECRET, body_of, chatwoot_headers, until, zendesk_headers

CONFIG = f"""
[monitor]
windows = ["60m"]
strikes = 1
low_score = 2

[journey]
channels = ["chat", "email", "survey"]
queues = ["support"]

[[journey.steps]]
name = "follow_up"
match = [{{ channel = "survey" }}]

[[collectors]]
type = "webhook"
name = "cw"
adapter = "chatwoot"
secret = "{SECRET}"
queues = {{ "1" = "support" }}

[[collectors]]
type = "webhook"
name = "zd"
adapter = "zendesk"
secret = "{SECRET}"
queues = {{ "360001" = "support" }}
"""


def fb(ts: float, cid: str, score: float | None, customer: str) -> ContactEvent:
    return ContactEvent(ts, EventKind.FEEDBACK, cid, "survey", "support", "t", customer, score=score)


def test_low_score_is_a_strike() -> None:
    """A score at or below ``monitor.low_score`` is a strike against the customer; above it is not."""
    agg = Aggregator(loads(CONFIG))
    agg.add([fb(1000.0, "a", 2.0, "+441"), fb(1001.0, "b", 3.0, "+442"), fb(1002.0, "c", 1.0, "+443")])
    assert agg.strikes == {"+441": 1, "+443": 1}


def test_response_rate_is_answered_over_sent() -> None:
    """response_rate = surveys answered ÷ surveys sent (a feedback event without a score), by count."""
    from cxmon.windows import window_measures

    agg = Aggregator(loads(CONFIG))
    sent = [fb(1000.0 + i, f"s{i}", None, f"c{i}") for i in range(8)]
    answered = [fb(1100.0 + i, f"s{i}", 4.0 + (i % 2), f"c{i}") for i in range(3)]
    agg.add(sent + answered)
    [series] = agg.series.values()
    figures = window_measures(series.windows[0].total, "excl_short_abandons")
    assert figures["response_rate"] == 3 / 8
    assert figures["csat"] == (4.0 + 5.0 + 4.0) / 3


async def test_helpdesk_feedback_reaches_the_feedback_step(tmp_path: Path) -> None:
    """Chatwoot: a survey sent and answered 1 with a comment; Zendesk: a survey offered. The
    Feedback step's series shows CSAT 1 and response rate 1/2, the customer has a strike, and the
    comment is in their path verbatim."""
    engine = Engine(loads(CONFIG), db_path=str(tmp_path / "h.db"))
    app = web.Application()
    for source in engine.sources:
        assert isinstance(source, WebhookSource)
        app.add_routes(source.http_routes())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    now = time.time()
    sent = p.chatwoot_csat(600, 41, now - 120, 1, "", email="ann@example.com")
    sent.update(event="message_created", content_attributes={})
    answered = p.chatwoot_csat(600, 41, now - 60, 1, "I was cut off twice", email="ann@example.com")
    offered = p.zendesk_rating(9, 35436, now - 30, "offered", "")
    try:
        async with engine, aiohttp.ClientSession() as http:
            await until(lambda: all(h.up for h in engine.health.values()))
            for route, payload, sign in (
                ("/webhooks/cw", sent, chatwoot_headers),
                ("/webhooks/cw", answered, chatwoot_headers),
                ("/webhooks/zd", offered, zendesk_headers),
            ):
                body = body_of(payload)
                async with http.post(base + route, data=body, headers=sign(body)) as r:
                    assert r.status == 200, await r.text()
            await until(lambda: sum(h.events_total for h in engine.health.values()) >= 3)
            await until(lambda: engine.latest.ts > now)
            snap = engine.latest
            leaders = await engine.customer_leaders()
            path = await engine.customer_path("ann@example.com")
    finally:
        await runner.cleanup()
    [series] = [s for s in snap.series if s.step == "follow_up"]
    assert (series.channel, series.queue) == ("survey", "support")
    assert series.windows[3600.0]["csat"] == 1.0
    assert series.windows[3600.0]["response_rate"] == 0.5
    assert ("ann@example.com", 1) in leaders
    assert [e.reason for e in path if e.score is not None] == ["I was cut off twice"]
