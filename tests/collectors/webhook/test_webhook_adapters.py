"""Each adapter on payloads shaped as its vendor documents them (see payloads.py), over real HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import aiohttp
import pytest

from cxmon.events import EventKind
from tests.collectors.webhook import payloads as p
from tests.collectors.webhook.harness import (
    SECRET,
    body_of,
    chatwoot_headers,
    connect_headers,
    make_source,
    native_headers,
    serving,
    twilio_request,
    until,
    zendesk_headers,
)


async def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        await r.read()
        return r.status


async def _chatwoot(url: str, payload: dict[str, Any]) -> int:
    body = body_of(payload)
    return await _post(url, body, chatwoot_headers(body))


async def _zendesk(url: str, payload: dict[str, Any]) -> int:
    body = body_of(payload)
    return await _post(url, body, zendesk_headers(body))


# ---------------------------------------------------------------------- Chatwoot


async def test_chatwoot_first_public_agent_reply_is_the_answer() -> None:
    """Created → customer message → private note → agent reply → second agent reply: one answer,
    its wait the first public agent reply's time since creation."""
    src = make_source("chatwoot", queues={"1": "support"})
    t0 = time.time() - 100
    async with serving(src) as (base, [sink]):
        url = base + src.path
        assert await _chatwoot(url, p.chatwoot_conversation("conversation_created", 10, t0)) == 200
        await _chatwoot(url, p.chatwoot_message(1, 10, t0 + 5, outgoing=False, created=t0))
        await _chatwoot(url, p.chatwoot_message(2, 10, t0 + 10, outgoing=True, private=True, created=t0))
        await _chatwoot(url, p.chatwoot_message(3, 10, t0 + 30, outgoing=True, created=t0))
        await _chatwoot(url, p.chatwoot_message(4, 10, t0 + 60, outgoing=True, created=t0))
        await until(lambda: len(sink.events) >= 2)
        await asyncio.sleep(0.05)
    assert sink.kinds() == ["arrived", "answered"]
    answered = sink.events[1]
    assert answered.wait is not None and abs(answered.wait - 30) < 1
    assert (answered.channel, answered.queue, answered.contact_id) == ("chat", "support", "chatwoot:10")
    assert answered.customer_id == "jane@acme.inc"


async def test_chatwoot_resolve_then_reopen() -> None:
    """Status resolved → resolved (with the resolution time); status open later → reopened."""
    src = make_source("chatwoot")
    t0 = time.time() - 200
    async with serving(src) as (base, [sink]):
        url = base + src.path
        await _chatwoot(url, p.chatwoot_conversation("conversation_created", 11, t0))
        await _chatwoot(
            url,
            p.chatwoot_conversation(
                "conversation_status_changed", 11, t0 + 90, status="resolved", created=t0
            ),
        )
        await _chatwoot(
            url,
            p.chatwoot_conversation("conversation_status_changed", 11, t0 + 150, status="open", created=t0),
        )
        await until(lambda: len(sink.events) >= 3)
    assert sink.kinds() == ["arrived", "resolved", "reopened"]
    assert sink.events[1].duration is not None and abs(sink.events[1].duration - 90) < 1


async def test_chatwoot_out_of_order_status_counts_the_arrival_once() -> None:
    """Resolved delivered before created: the arrival is counted at created_at, the late created is
    not a second arrival, and an older status change delivered last is ignored as stale."""
    src = make_source("chatwoot")
    t0 = time.time() - 200
    async with serving(src) as (base, [sink]):
        url = base + src.path
        await _chatwoot(
            url,
            p.chatwoot_conversation(
                "conversation_status_changed", 12, t0 + 90, status="resolved", created=t0
            ),
        )
        await _chatwoot(url, p.chatwoot_conversation("conversation_created", 12, t0))
        await _chatwoot(
            url,
            p.chatwoot_conversation("conversation_status_changed", 12, t0 + 40, status="pending", created=t0),
        )
        await until(lambda: src.counts["accepted"] == 3)
        await asyncio.sleep(0.05)
    assert sink.kinds() == ["arrived", "resolved"]
    assert abs(sink.events[0].ts - int(t0)) < 1
    assert src.counts["stale"] == 1


async def test_chatwoot_csat_is_feedback_with_its_comment() -> None:
    """A CSAT survey response becomes a feedback event: the rating as score, the comment verbatim."""
    src = make_source("chatwoot")
    async with serving(src) as (base, [sink]):
        await _chatwoot(base + src.path, p.chatwoot_csat(99, 10, time.time(), 1, "Nobody answered for ages"))
        await until(lambda: len(sink.events) == 1)
    fb = sink.events[0]
    assert (fb.kind, fb.score, fb.reason, fb.contact_id) == (
        EventKind.FEEDBACK,
        1.0,
        "Nobody answered for ages",
        "chatwoot:10",
    )


async def test_chatwoot_unknown_event_is_counted_and_ignored() -> None:
    """An event type the adapter does not map (webwidget_triggered) is answered 200, counted, ignored."""
    src = make_source("chatwoot")
    payload = {"id": 12, "event": "webwidget_triggered", "current_conversation": None, "source_id": "x"}
    async with serving(src) as (base, [sink]):
        assert await _chatwoot(base + src.path, payload) == 200
        await until(lambda: src.counts["unknown"] == 1)
    assert sink.events == []


# ---------------------------------------------------------------------- Zendesk


async def test_zendesk_ticket_life() -> None:
    """Created → requester comment → public agent comment (answer) → pending → solved (resolved,
    the pending time left out of the resolution time)."""
    src = make_source("zendesk", queues={"360001": "billing"})
    t0 = time.time() - 3600
    async with serving(src) as (base, [sink]):
        url = base + src.path
        await _zendesk(
            url, p.zendesk_ticket("created", "e1", 35436, t0, {"current": {"status": "NEW"}}, created=t0)
        )
        await _zendesk(
            url, p.zendesk_ticket("comment_added", "e2", 35436, t0 + 60, p.zendesk_comment(False), created=t0)
        )
        await _zendesk(
            url, p.zendesk_ticket("comment_added", "e3", 35436, t0 + 600, p.zendesk_comment(True), created=t0)
        )
        await _zendesk(
            url,
            p.zendesk_ticket(
                "status_changed",
                "e4",
                35436,
                t0 + 700,
                {"current": "PENDING", "previous": "OPEN"},
                created=t0,
            ),
        )
        await _zendesk(
            url,
            p.zendesk_ticket(
                "status_changed",
                "e5",
                35436,
                t0 + 1800,
                {"current": "SOLVED", "previous": "PENDING"},
                created=t0,
            ),
        )
        await until(lambda: len(sink.events) >= 4)
        await asyncio.sleep(0.05)
    assert sink.kinds() == ["arrived", "answered", "paused", "resolved"]
    arrived, answered, paused, resolved = sink.events
    assert abs(paused.ts - (t0 + 700)) < 1
    assert (arrived.channel, arrived.queue, arrived.contact_id) == ("email", "billing", "zendesk:35436")
    assert answered.wait is not None and abs(answered.wait - 600) < 1
    # Pending from +700 s to the solve at +1800 s stops the clock: 700 s of resolution time.
    assert resolved.duration is not None and abs(resolved.duration - 700) < 1


async def test_zendesk_duplicate_delivery_is_idempotent() -> None:
    """The same event (same id) delivered twice, freshly signed each time: counted once."""
    src = make_source("zendesk")
    t0 = time.time() - 60
    payload = p.zendesk_ticket("created", "e-dup", 7, t0, {}, created=t0)
    async with serving(src) as (base, [sink]):
        body = body_of(payload)
        assert await _post(base + src.path, body, zendesk_headers(body, ts=time.time() - 1)) == 200
        assert await _post(base + src.path, body, zendesk_headers(body)) == 200
        await until(lambda: src.counts["duplicates"] == 1)
    assert sink.kinds() == ["arrived"]


async def test_zendesk_out_of_order_status_change_is_stale() -> None:
    """open→solved applied, then an older pending delivered late: ignored, the ticket stays solved."""
    src = make_source("zendesk")
    t0 = time.time() - 3600
    async with serving(src) as (base, [sink]):
        url = base + src.path
        await _zendesk(
            url, p.zendesk_ticket("status_changed", "s2", 8, t0 + 900, {"current": "SOLVED"}, created=t0)
        )
        await _zendesk(
            url, p.zendesk_ticket("status_changed", "s1", 8, t0 + 300, {"current": "PENDING"}, created=t0)
        )
        await until(lambda: src.counts["accepted"] == 2)
        await asyncio.sleep(0.05)
    assert sink.kinds() == ["arrived", "resolved"]
    assert src.counts["stale"] == 1


async def test_zendesk_mixed_case_status_is_read() -> None:
    """Statuses are read without regard to case ("Solved", "solved", "SOLVED")."""
    src = make_source("zendesk")
    t0 = time.time() - 600
    async with serving(src) as (base, [sink]):
        await _zendesk(
            base + src.path,
            p.zendesk_ticket("status_changed", "m1", 9, t0 + 5, {"current": "Solved"}, created=t0),
        )
        await until(lambda: len(sink.events) == 2)
    assert sink.kinds() == ["arrived", "resolved"]


async def test_zendesk_satisfaction_rating_is_feedback() -> None:
    """A "bad" satisfaction rating is feedback scored 1 with its comment."""
    src = make_source("zendesk")
    async with serving(src) as (base, [sink]):
        await _zendesk(base + src.path, p.zendesk_rating(1234, 35436, time.time(), "bad", "Still broken"))
        await until(lambda: len(sink.events) == 1)
    assert (sink.events[0].score, sink.events[0].reason) == (1.0, "Still broken")


async def test_zendesk_changed_rating_and_added_comment_arrive_and_a_redelivery_does_not() -> None:
    """A survey rated good, then good with a comment, then bad: each answer arrives (the engine
    keeps the latest), the comment with its; the same answer delivered again is a duplicate."""
    src = make_source("zendesk")
    now = time.time()
    answers = [("good", "", now - 120), ("good", "Quick, thanks", now - 60), ("bad", "Broke again", now)]
    async with serving(src) as (base, [sink]):
        for score, comment, ts in answers:
            await _zendesk(base + src.path, p.zendesk_rating(1234, 35436, ts, score, comment))
        body = body_of(p.zendesk_rating(1234, 35436, now, "bad", "Broke again"))
        await _post(base + src.path, body, zendesk_headers(body, now - 1))  # a retry, signed anew
        await until(lambda: len(sink.events) == 3)
        await until(lambda: src.counts["duplicates"] == 1)
    assert [(e.score, e.reason) for e in sink.events] == [
        (5.0, None),
        (5.0, "Quick, thanks"),
        (1.0, "Broke again"),
    ]


async def test_zendesk_unknown_event_type_is_counted_and_ignored() -> None:
    """A user event (zen:event-type:user.active_changed) is answered 200, counted, ignored."""
    src = make_source("zendesk")
    payload = {
        "type": "zen:event-type:user.active_changed",
        "account_id": 12514403,
        "id": "2b24ef10-19d4-4740-93cf-8f98ec4776c0",
        "time": p.iso(time.time()),
        "zendesk_event_version": "2022-06-20",
        "subject": "zen:user:6596848315901",
        "detail": {"id": "6596848315901", "role": "end-user"},
        "event": {"current": False, "previous": True},
    }
    async with serving(src) as (base, [sink]):
        assert await _zendesk(base + src.path, payload) == 200
        await until(lambda: src.counts["unknown"] == 1)
    assert sink.events == []


# ---------------------------------------------------------------------- Twilio TaskRouter


async def _twilio(url: str, params: dict[str, str]) -> int:
    body, headers = twilio_request(url, params)
    return await _post(url, body, headers)


async def test_twilio_task_answered_and_completed() -> None:
    """task-queue.entered → reservation.accepted → task.completed: arrived, answered, resolved; 204s."""
    src = make_source("twilio_taskrouter")
    t0 = time.time() - 250
    async with serving(src) as (base, [sink]):
        url = base + src.path
        codes = [
            await _twilio(url, p.taskrouter("task-queue.entered", "EV1", "WT1", t0)),
            await _twilio(url, p.taskrouter("reservation.accepted", "EV2", "WT1", t0 + 25, TaskAge="25")),
            await _twilio(url, p.taskrouter("task.completed", "EV3", "WT1", t0 + 200, TaskAge="200")),
        ]
        await until(lambda: len(sink.events) == 3)
    assert codes == [204, 204, 204]
    assert sink.kinds() == ["arrived", "answered", "resolved"]
    assert sink.events[1].wait is not None and abs(sink.events[1].wait - 25) < 1
    assert (sink.events[0].channel, sink.events[0].queue, sink.events[0].customer_id) == (
        "voice",
        "billing",
        "+14158675310",
    )


async def test_twilio_canceled_and_timed_out_tasks_are_abandons() -> None:
    """task.canceled and task-queue.timeout of unanswered tasks are abandons: a cancel by TaskRouter
    when the task's TTL ran out and a timeout are timeouts, any other cancel is the caller hanging up
    (the reasons a service level is judged by: hangup, timeout, key, empty)."""
    src = make_source("twilio_taskrouter")
    t0 = time.time() - 250
    async with serving(src) as (base, [sink]):
        url = base + src.path
        await _twilio(url, p.taskrouter("task-queue.entered", "EV1", "WT1", t0))
        await _twilio(url, p.taskrouter("task.canceled", "EV2", "WT1", t0 + 40, TaskCanceledReason="hangup"))
        await _twilio(url, p.taskrouter("task-queue.entered", "EV3", "WT2", t0))
        await _twilio(url, p.taskrouter("task-queue.timeout", "EV4", "WT2", t0 + 120))
        await _twilio(url, p.taskrouter("task-queue.entered", "EV5", "WT3", t0))
        await _twilio(
            url, p.taskrouter("task.canceled", "EV6", "WT3", t0 + 90, TaskCanceledReason="Task TTL Exceeded")
        )
        await _twilio(url, p.taskrouter("task-queue.entered", "EV7", "WT4", t0))
        await _twilio(
            url,
            p.taskrouter("task.canceled", "EV8", "WT4", t0 + 30, TaskCanceledReason="Caller left the queue"),
        )
        await until(lambda: len(sink.events) == 8)
    assert [(e.kind.value, e.reason) for e in sink.events] == [
        ("arrived", None),
        ("abandoned", "hangup"),
        ("arrived", None),
        ("abandoned", "timeout"),
        ("arrived", None),
        ("abandoned", "timeout"),  # TaskRouter's own cancel when the TTL runs out
        ("arrived", None),
        ("abandoned", "hangup"),  # the application's words: the caller left (not a reason of its own)
    ]


async def test_twilio_unknown_event_type_is_counted_and_ignored() -> None:
    """worker.activity.update is answered 204, counted, ignored."""
    src = make_source("twilio_taskrouter")
    async with serving(src) as (base, [sink]):
        status = await _twilio(
            base + src.path, p.taskrouter("worker.activity.update", "EV9", "WT9", time.time())
        )
        await until(lambda: src.counts["unknown"] == 1)
    assert status == 204 and sink.events == []


async def test_twilio_signature_over_other_url_is_refused() -> None:
    """Twilio signs the URL: a request signed for another URL is refused."""
    src = make_source("twilio_taskrouter")
    async with serving(src) as (base, [_sink]):
        body, headers = twilio_request(
            "https://elsewhere.example/hook", p.taskrouter("task-queue.entered", "E", "T", time.time())
        )
        status = await _post(base + src.path, body, headers)
    assert status == 401 and src.rejected == {"bad_signature": 1}


async def test_twilio_public_url_is_what_is_signed() -> None:
    """Behind a proxy, ``public_url`` is the URL checked."""
    public = "https://cxmon.example.com/webhooks/twilio_taskrouter"
    src = make_source("twilio_taskrouter", public_url=public)
    async with serving(src) as (base, [sink]):
        body, headers = twilio_request(public, p.taskrouter("task-queue.entered", "E", "T", time.time()))
        status = await _post(base + src.path, body, headers)
        await until(lambda: len(sink.events) == 1)
    assert status == 204


# ---------------------------------------------------------------------- Amazon Connect


async def _connect(url: str, payload: dict[str, Any], header: str = "Authorization") -> int:
    return await _post(url, body_of(payload), connect_headers(header))


async def test_connect_call_queued_connected_disconnected() -> None:
    """QUEUED → CONNECTED_TO_AGENT (``AgentInfo``) → DISCONNECTED: arrived at the enqueue time,
    answered with its wait, resolved with the handle time since the connection."""
    src = make_source("amazon_connect", tolerance="1h", queues={"billing-queue-id": "billing"})
    t0 = time.time() - 400
    async with serving(src) as (base, [sink]):
        url = base + src.path
        await _connect(url, p.connect_event("QUEUED", "ev-1", "c-1", t0 + 1, enqueued=t0))
        await _connect(
            url,
            p.connect_event(
                "CONNECTED_TO_AGENT",
                "ev-2",
                "c-1",
                t0 + 31,
                enqueued=t0,
                connected=t0 + 30,
                capitalised_agent=True,
            ),
        )
        await _connect(
            url,
            p.connect_event(
                "DISCONNECTED", "ev-3", "c-1", t0 + 301, enqueued=t0, connected=t0 + 30, disconnected=t0 + 300
            ),
        )
        await until(lambda: len(sink.events) == 3)
    arrived, answered, resolved = sink.events
    assert sink.kinds() == ["arrived", "answered", "resolved"]
    assert (arrived.queue, arrived.channel) == ("billing", "voice") and abs(arrived.ts - t0) < 0.01
    assert answered.wait is not None and abs(answered.wait - 30) < 0.01
    assert resolved.duration is not None and abs(resolved.duration - 270) < 0.01


async def test_connect_disconnect_without_agent_is_an_abandon() -> None:
    """DISCONNECTED with queue info and no agent: abandoned, with the wait since enqueue."""
    src = make_source("amazon_connect", tolerance="1h")
    t0 = time.time() - 400
    async with serving(src) as (base, [sink]):
        url = base + src.path
        await _connect(url, p.connect_event("QUEUED", "ev-1", "c-2", t0 + 1, enqueued=t0))
        await _connect(
            url, p.connect_event("DISCONNECTED", "ev-2", "c-2", t0 + 46, enqueued=t0, disconnected=t0 + 45)
        )
        await until(lambda: len(sink.events) == 2)
    assert sink.kinds() == ["arrived", "abandoned"]
    assert sink.events[1].wait is not None and abs(sink.events[1].wait - 45) < 0.01


async def test_connect_disconnect_overtaking_the_others_tells_the_whole_call() -> None:
    """DISCONNECTED delivered first: arrival and answer are counted from its own timestamps; the late
    QUEUED and CONNECTED_TO_AGENT add nothing."""
    src = make_source("amazon_connect", tolerance="1h")
    t0 = time.time() - 400
    async with serving(src) as (base, [sink]):
        url = base + src.path
        await _connect(
            url,
            p.connect_event(
                "DISCONNECTED", "ev-3", "c-3", t0 + 301, enqueued=t0, connected=t0 + 30, disconnected=t0 + 300
            ),
        )
        await _connect(url, p.connect_event("QUEUED", "ev-1", "c-3", t0 + 1, enqueued=t0))
        await _connect(
            url, p.connect_event("CONNECTED_TO_AGENT", "ev-2", "c-3", t0 + 31, enqueued=t0, connected=t0 + 30)
        )
        await until(lambda: src.counts["accepted"] == 3)
        await asyncio.sleep(0.05)
    assert sink.kinds() == ["arrived", "answered", "resolved"]


async def test_connect_custom_header_carries_the_secret() -> None:
    """With ``header = "X-Api-Key"`` the secret is that header's value; Authorization is not read."""
    src = make_source("amazon_connect", tolerance="1h", header="X-Api-Key")
    async with serving(src) as (base, [_sink]):
        url = base + src.path
        good = await _connect(
            url, p.connect_event("QUEUED", "ev-1", "c-4", time.time(), enqueued=time.time()), "X-Api-Key"
        )
        bad = await _connect(url, p.connect_event("QUEUED", "ev-2", "c-5", time.time(), enqueued=time.time()))
    assert (good, bad) == (200, 401)


async def test_connect_wrong_bearer_is_refused() -> None:
    """A wrong bearer token: 401 bad_signature."""
    src = make_source("amazon_connect", tolerance="1h")
    async with serving(src) as (base, [_sink]):
        headers = {"Content-Type": "application/json", "Authorization": "Bearer nope"}
        status = await _post(
            base + src.path,
            body_of(p.connect_event("QUEUED", "e", "c", time.time(), enqueued=time.time())),
            headers,
        )
    assert status == 401 and src.rejected == {"bad_signature": 1}


# ---------------------------------------------------------------------- native


async def _native(url: str, payload: Any) -> tuple[int, bytes]:
    body = body_of(payload)
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=native_headers(body)) as r:
        return r.status, await r.read()


async def test_native_batch_is_taken_and_ids_dedupe() -> None:
    """A batch of events is taken; an event id sent again in a later batch is counted once."""
    src = make_source("native")
    now = time.time()
    ev = {
        "id": "a1",
        "ts": now - 10,
        "kind": "arrived",
        "contact_id": "k1",
        "channel": "web",
        "queue": "orders",
    }
    fb = {
        "id": "f1",
        "ts": now,
        "kind": "feedback",
        "contact_id": "k1",
        "channel": "web",
        "queue": "orders",
        "score": 2,
        "comment": "Slow checkout",
        "customer": {"email": "Jane@Example.COM"},
    }
    async with serving(src) as (base, [sink]):
        first, _ = await _native(base + src.path, {"version": 1, "events": [ev, fb]})
        second, _ = await _native(base + src.path, {"version": 1, "events": [ev]})
        await until(lambda: src.counts["duplicates"] == 1)
    assert (first, second) == (200, 200)
    assert sink.kinds() == ["arrived", "feedback"]
    assert (sink.events[1].reason, sink.events[1].customer_id) == ("Slow checkout", "jane@example.com")


async def test_native_single_event_is_taken() -> None:
    """One event object with "version": 1 is taken as it is."""
    src = make_source("native")
    async with serving(src) as (base, [sink]):
        status, _ = await _native(
            base + src.path,
            {"version": 1, "ts": time.time(), "kind": "arrived", "contact_id": "x", "queue": "q"},
        )
        await until(lambda: len(sink.events) == 1)
    assert status == 200 and sink.events[0].source == "native"


async def test_native_unknown_version_is_malformed() -> None:
    """Version 2 is refused with 400 naming the version."""
    src = make_source("native")
    async with serving(src) as (base, [sink]):
        status, text = await _native(base + src.path, {"version": 2, "events": []})
    assert status == 400 and b"version" in text and sink.events == []


async def test_native_bad_event_names_its_place() -> None:
    """An unknown kind in a batch: 400 naming the event, and nothing of the batch is taken."""
    src = make_source("native")
    good = {"ts": time.time(), "kind": "arrived", "contact_id": "x", "queue": "q"}
    async with serving(src) as (base, [sink]):
        status, text = await _native(
            base + src.path, {"version": 1, "events": [good, {**good, "kind": "exploded"}]}
        )
        await asyncio.sleep(0.05)
    assert status == 400 and b"events[1].kind" in text and sink.events == []


@pytest.mark.parametrize(
    ("customer", "where"),
    [
        ({"x": 1}, b"events[0].customer.x: unknown key"),
        ({"phone": 34600111222}, b"events[0].customer.phone: expected a string"),
        ({"email": ["a@b.c"]}, b"events[0].customer.email: expected a string"),
        ({"id": 1.5}, b"events[0].customer.id: expected a string or an integer"),
        ({"id": True}, b"events[0].customer.id: expected a string or an integer"),
    ],
)
async def test_native_customer_object_off_the_schema_is_malformed(customer: object, where: bytes) -> None:
    """A customer object with a key the schema does not name, or a value of another type, is refused
    with 400 naming its key path; nothing of the batch is taken."""
    src = make_source("native")
    good = {"ts": time.time(), "kind": "arrived", "contact_id": "x", "queue": "q"}
    async with serving(src) as (base, [sink]):
        status, text = await _native(
            base + src.path, {"version": 1, "events": [{**good, "customer": customer}]}
        )
        await asyncio.sleep(0.05)
    assert status == 400 and where in text and sink.events == []


async def test_native_customer_id_that_is_not_a_string_is_malformed() -> None:
    """``customer_id`` is a string: an object there is refused with 400 naming ``customer_id``."""
    src = make_source("native")
    good = {"ts": time.time(), "kind": "arrived", "contact_id": "x", "queue": "q"}
    async with serving(src) as (base, [sink]):
        status, text = await _native(
            base + src.path, {**good, "version": 1, "customer_id": {"phone": "+34600111222"}}
        )
        await asyncio.sleep(0.05)
    assert status == 400 and b"body.customer_id: expected a string" in text and sink.events == []


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "1e400", -5])
async def test_a_time_that_is_not_finite_or_before_1970_is_malformed(bad: object) -> None:
    """A vendor time of "inf", "nan" or before 1970 is refused with 400 naming its key, rather than
    taken (and answered 200) as an event the engine then drops and a contact's clock that is NaN."""
    src = make_source("chatwoot")
    payload = p.chatwoot_conversation("conversation_created", 41, time.time())
    payload["created_at"] = payload["timestamp"] = bad
    async with serving(src) as (base, [sink]):
        body = body_of(payload)
        async with (
            aiohttp.ClientSession() as http,
            http.post(base + src.path, data=body, headers=chatwoot_headers(body)) as r,
        ):
            status, text = r.status, await r.read()
        await asyncio.sleep(0.05)
    assert status == 400 and b"body.created_at: not a time" in text and sink.events == []


async def test_a_signed_timestamp_that_is_nan_is_refused() -> None:
    """A signature over the timestamp "nan" is refused (401): NaN is within no tolerance, though it
    compares as if it were."""
    src = make_source("native")
    body = body_of({"version": 1, "ts": time.time(), "kind": "arrived", "contact_id": "x", "queue": "q"})
    stamp = "nan"
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {
        "Content-Type": "application/json",
        "X-Cxmon-Signature": f"sha256={mac}",
        "X-Cxmon-Timestamp": stamp,
    }
    async with serving(src) as (base, [sink]):
        status = await _post(base + src.path, body, headers)
        await asyncio.sleep(0.05)
    assert status == 401 and sink.events == [] and src.rejected["bad_signature"] == 1


@pytest.mark.parametrize("bad", [{"id": 360001}, [360001], True])
async def test_a_group_or_inbox_that_is_not_an_id_is_malformed(bad: object) -> None:
    """A Zendesk group_id or a Chatwoot inbox_id that is an object, a list or a boolean is refused with
    400 naming its key, rather than made into a queue named "{'id': 360001}"."""
    now = time.time()
    zendesk = make_source("zendesk")
    ticket = p.zendesk_ticket("created", "01GZ1", 51, now, {}, created=now)
    ticket["detail"]["group_id"] = bad
    chatwoot = make_source("chatwoot")
    conversation = p.chatwoot_conversation("conversation_created", 52, now)
    conversation["inbox_id"] = bad
    async with serving(zendesk, chatwoot) as (base, sinks):
        z_body, c_body = body_of(ticket), body_of(conversation)
        async with aiohttp.ClientSession() as http:
            async with http.post(base + zendesk.path, data=z_body, headers=zendesk_headers(z_body)) as r:
                z_status, z_text = r.status, await r.read()
            async with http.post(base + chatwoot.path, data=c_body, headers=chatwoot_headers(c_body)) as r:
                c_status, c_text = r.status, await r.read()
        await asyncio.sleep(0.05)
    assert (z_status, c_status) == (400, 400)
    assert b"detail.group_id: expected an id" in z_text and b"body.inbox_id: expected an id" in c_text
    assert [s.events for s in sinks] == [[], []]


async def test_a_late_reply_is_not_shortened_by_a_pause_after_it() -> None:
    """Created at 0, answered at +600 s, pending from +700 s to +900 s; the answer is delivered last.
    Its wait is 600 s: the pause came after it and does not stop its clock."""
    src = make_source("zendesk")
    t0 = time.time() - 3600

    def status(event_id: str, at: float, current: str, previous: str) -> dict[str, Any]:
        event = {"current": current, "previous": previous}
        return p.zendesk_ticket("status_changed", event_id, 35437, t0 + at, event, created=t0)

    async with serving(src) as (base, [sink]):
        url = base + src.path
        await _zendesk(url, p.zendesk_ticket("created", "l1", 35437, t0, {}, created=t0))
        await _zendesk(url, status("l3", 700, "PENDING", "OPEN"))
        await _zendesk(url, status("l4", 900, "OPEN", "PENDING"))
        reply = p.zendesk_comment(True)
        await _zendesk(url, p.zendesk_ticket("comment_added", "l2", 35437, t0 + 600, reply, created=t0))
        await until(lambda: "answered" in sink.kinds())
    [answered] = [e for e in sink.events if e.kind is EventKind.ANSWERED]
    assert answered.wait is not None and abs(answered.wait - 600) < 1


async def test_twilio_task_age_before_1970_is_malformed() -> None:
    """A reservation.accepted whose TaskAge puts the task's creation before 1970 is refused with 400
    naming TaskAge, rather than taken as an answer after a wait of centuries."""
    src = make_source("twilio_taskrouter")
    async with serving(src) as (base, [sink]):
        url = base + src.path
        accepted = p.taskrouter("reservation.accepted", "EV9", "WT9", time.time(), TaskAge="99999999999")
        body, headers = twilio_request(url, accepted)
        async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
            status, text = r.status, await r.read()
        await asyncio.sleep(0.05)
    assert status == 400 and b"TaskAge" in text and sink.events == []


async def test_twilio_task_attributes_that_are_not_an_object_are_malformed() -> None:
    """TaskAttributes holding a JSON list is refused with 400 naming it, not read as no attributes."""
    src = make_source("twilio_taskrouter")
    async with serving(src) as (base, [sink]):
        url = base + src.path
        entered = p.taskrouter("task-queue.entered", "EV8", "WT8", time.time(), TaskAttributes="[1, 2]")
        body, headers = twilio_request(url, entered)
        async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
            status, text = r.status, await r.read()
        await asyncio.sleep(0.05)
    assert status == 400 and b"TaskAttributes: expected a JSON object" in text and sink.events == []


async def test_connect_queue_arn_that_is_not_a_string_is_malformed() -> None:
    """A queueInfo.queueArn that is a number is refused with 400 naming it, not read as no queue."""
    src = make_source("amazon_connect")
    now = time.time()
    event = p.connect_event("QUEUED", "q-arn-1", "c-arn-1", now, enqueued=now)
    event["detail"]["queueInfo"]["queueArn"] = 5
    async with serving(src) as (base, [sink]):
        async with (
            aiohttp.ClientSession() as http,
            http.post(base + src.path, data=body_of(event), headers=connect_headers()) as r,
        ):
            status, text = r.status, await r.read()
        await asyncio.sleep(0.05)
    assert (
        status == 400 and b"body.detail.queueInfo.queueArn: expected a string" in text and sink.events == []
    )
