"""The webhook door: every kind of bad request gets its 4xx, is counted, and makes no event.

Every test talks to a real aiohttp server on 127.0.0.1 with a real aiohttp client.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.collectors.webhook import payloads as p
from tests.collectors.webhook.harness import (
    SECRET,
    RecordingSink,
    body_of,
    chatwoot_headers,
    make_source,
    native_headers,
    serving,
    until,
    zendesk_headers,
)


def _created(conv: int = 10) -> bytes:
    return body_of(p.chatwoot_conversation("conversation_created", conv, time.time()))


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, dict(r.headers), await r.read()


async def test_signed_request_is_taken() -> None:
    """A correctly signed Chatwoot delivery is answered 200 and becomes an arrival."""
    src = make_source("chatwoot")
    async with serving(src) as (base, [sink]):
        body = _created()
        status, _, _ = await _post(base + src.path, body, chatwoot_headers(body))
        assert status == 200
        await until(lambda: sink.kinds() == ["arrived"])
    assert sink.errors == []


async def test_unsigned_request_is_refused() -> None:
    """No signature headers: 401, counted as unsigned, nothing ingested."""
    src = make_source("chatwoot")
    async with serving(src) as (base, [sink]):
        status, _, text = await _post(base + src.path, _created(), {"Content-Type": "application/json"})
        await asyncio.sleep(0.05)
    assert status == 401 and b"unsigned" in text
    assert src.rejected == {"unsigned": 1}
    assert sink.events == [] and len(sink.errors) == 1


async def test_badly_signed_request_is_refused() -> None:
    """A signature over other bytes: 401 bad_signature, nothing ingested."""
    src = make_source("chatwoot")
    async with serving(src) as (base, [sink]):
        body = _created()
        headers = chatwoot_headers(body + b" ")
        status, _, _ = await _post(base + src.path, body, headers)
        await asyncio.sleep(0.05)
    assert status == 401
    assert src.rejected == {"bad_signature": 1}
    assert sink.events == []


async def test_signature_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The signature check goes through hmac.compare_digest (a plain == would leak timing)."""
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr("collectors.webhook.model.hmac.compare_digest", spy)
    src = make_source("zendesk")
    async with serving(src) as (base, _):
        body = body_of(p.zendesk_ticket("created", "e1", 1, time.time(), {}, created=time.time()))
        headers = zendesk_headers(body)
        status, _, _ = await _post(base + src.path, body, headers)
    assert status == 200
    assert any(a == headers["X-Zendesk-Webhook-Signature"].encode() for a, _ in calls)


async def test_stale_timestamp_is_refused() -> None:
    """A correct signature over a timestamp ten minutes old (tolerance 5 m): 401, nothing ingested."""
    src = make_source("native")
    async with serving(src) as (base, [sink]):
        body = body_of({"version": 1, "ts": time.time(), "kind": "arrived", "contact_id": "c1", "queue": "q"})
        status, _, text = await _post(base + src.path, body, native_headers(body, ts=time.time() - 600))
        await asyncio.sleep(0.05)
    assert status == 401 and b"stale_timestamp" in text
    assert src.rejected == {"stale_timestamp": 1} and sink.events == []


@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf"])
async def test_a_timestamp_that_is_not_a_finite_time_is_refused(stamp: str) -> None:
    """A correct signature over the timestamp "nan" (or an infinite one): 401, nothing ingested
    (a NaN passed the tolerance check, so its request could be replayed once its delivery id was
    forgotten)."""
    src = make_source("native")
    async with serving(src) as (base, [sink]):
        body = body_of({"version": 1, "ts": time.time(), "kind": "arrived", "contact_id": "c1", "queue": "q"})
        mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-Cxmon-Signature": f"sha256={mac}",
            "X-Cxmon-Timestamp": stamp,
        }
        status, _, text = await _post(base + src.path, body, headers)
        await asyncio.sleep(0.05)
    assert status == 401 and b"X-Cxmon-Timestamp" in text
    assert sink.events == []


async def test_an_event_time_that_is_not_finite_is_malformed_at_its_key_path() -> None:
    """A native event stamped "inf" is refused 400 naming events[0].ts (it used to be answered 200,
    then dropped by the engine as 'event 1 of a batch')."""
    src = make_source("native")
    async with serving(src) as (base, [sink]):
        event = {"ts": "inf", "kind": "arrived", "contact_id": "c1", "queue": "q"}
        body = body_of({"version": 1, "events": [event]})
        status, _, text = await _post(base + src.path, body, native_headers(body))
        await asyncio.sleep(0.05)
    assert status == 400 and b"events[0].ts" in text
    assert sink.events == []


@pytest.mark.parametrize(
    ("field", "bad"),
    [("wait", "nan"), ("duration", "inf"), ("score", "-inf"), ("score", "5"), ("wait", True)],
)
async def test_a_wait_duration_or_score_that_is_not_a_json_number_is_malformed_at_its_key_path(
    field: str, bad: object
) -> None:
    """A native event whose wait, duration or score is not a JSON number ("nan", "5", true) is
    refused 400 naming its key, with its batch, as the schema says: "nan" used to be answered 200
    and then dropped by the engine, and "5" was read as a score the schema does not allow."""
    src = make_source("native")
    async with serving(src) as (base, [sink]):
        now = time.time()
        good = {"ts": now, "kind": "arrived", "contact_id": "c1", "queue": "q"}
        event = {"ts": now, "kind": "feedback", "contact_id": "c1", "queue": "q", field: bad}
        body = body_of({"version": 1, "events": [good, event]})
        status, _, text = await _post(base + src.path, body, native_headers(body))
        await asyncio.sleep(0.05)
    assert status == 400 and f"events[1].{field}: expected a number".encode() in text
    assert src.rejected == {"malformed": 1} and sink.events == []


async def test_an_event_stamped_past_the_clock_skew_is_malformed_at_its_key_path() -> None:
    """A native event stamped a day ahead is refused 400 naming events[1].ts, and its batch with it
    (it used to be answered 200 and then dropped by the engine as too far ahead)."""
    src = make_source("native")
    async with serving(src) as (base, [sink]):
        now = time.time()
        good = {"ts": now, "kind": "arrived", "contact_id": "c1", "queue": "q"}
        ahead = {"ts": now + 86400, "kind": "arrived", "contact_id": "c2", "queue": "q"}
        body = body_of({"version": 1, "events": [good, ahead]})
        status, _, text = await _post(base + src.path, body, native_headers(body))
        await asyncio.sleep(0.05)
    assert status == 400 and b"events[1].ts: stamped 86400 s ahead of the clock" in text
    assert src.rejected == {"malformed": 1} and sink.events == []


async def test_replayed_delivery_is_refused() -> None:
    """The same signed request sent twice: the second is 409 replayed and nothing is counted twice."""
    src = make_source("chatwoot")
    async with serving(src) as (base, [sink]):
        body = _created()
        headers = chatwoot_headers(body, delivery="d-1")
        first, _, _ = await _post(base + src.path, body, headers)
        second, _, text = await _post(base + src.path, body, headers)
        await until(lambda: len(sink.events) >= 1)
        await asyncio.sleep(0.05)
    assert (first, second) == (200, 409) and b"replayed" in text
    assert sink.kinds() == ["arrived"]


async def test_oversized_body_is_refused() -> None:
    """A body over max_body: 413 before it is read whole, nothing ingested."""
    src = make_source("native", max_body=1024)
    async with serving(src) as (base, [sink]):
        body = b'{"version": 1, "pad": "' + b"x" * 4096 + b'"}'
        status, _, _ = await _post(base + src.path, body, native_headers(body))
    assert status == 413 and src.rejected == {"too_large": 1} and sink.events == []


async def test_oversized_chunked_body_is_refused() -> None:
    """A chunked body (no Content-Length) that grows past max_body: 413."""
    src = make_source("native", max_body=1024)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 512

    async with serving(src) as (base, [sink]):
        headers = native_headers(b"")
        async with (
            aiohttp.ClientSession() as http,
            http.post(base + src.path, data=chunks(), headers=headers) as r,
        ):
            status = r.status
    assert status == 413 and src.rejected == {"too_large": 1} and sink.events == []


async def test_wrong_method_is_refused() -> None:
    """GET on the webhook path: 405 with Allow: POST."""
    src = make_source("chatwoot")
    async with (
        serving(src) as (base, [_sink]),
        aiohttp.ClientSession() as http,
        http.get(base + src.path) as r,
    ):
        status, allow = r.status, r.headers.get("Allow")
    assert (status, allow) == (405, "POST") and src.rejected == {"wrong_method": 1}


async def test_wrong_content_type_is_refused() -> None:
    """A JSON adapter sent a form: 415."""
    src = make_source("chatwoot")
    async with serving(src) as (base, [sink]):
        body = _created()
        headers = chatwoot_headers(body) | {"Content-Type": "application/x-www-form-urlencoded"}
        status, _, _ = await _post(base + src.path, body, headers)
    assert status == 415 and src.rejected == {"wrong_content_type": 1} and sink.events == []


async def test_malformed_signed_body_is_refused() -> None:
    """Correctly signed but not JSON: 400 malformed, and the answer says what is wrong."""
    src = make_source("chatwoot")
    async with serving(src) as (base, [sink]):
        body = b'{"event": "conversation_created", "id": '
        status, _, text = await _post(base + src.path, body, chatwoot_headers(body))
    assert status == 400 and b"not JSON" in text
    assert src.rejected == {"malformed": 1} and sink.events == []


async def test_full_queue_answers_503_with_retry_after() -> None:
    """With the engine busy and the queue full, a delivery gets 503 and Retry-After, not a wait."""
    src = make_source("chatwoot", queue_size=1)
    async with serving(src) as (base, [sink]):
        sink.gate = asyncio.Event()
        codes = []
        for conv in range(1, 5):
            body = _created(conv)
            status, headers, _ = await _post(base + src.path, body, chatwoot_headers(body))
            codes.append((status, headers.get("Retry-After")))
        sink.gate.set()
        await until(lambda: len(sink.events) == 2)
    # One delivery in the consumer's hands, one in the queue, the rest turned away.
    assert codes == [(200, None), (200, None), (503, "1"), (503, "1")]
    assert src.rejected == {"queue_full": 2}


async def test_a_refused_retry_after_503_is_taken() -> None:
    """A delivery refused for a full queue is not remembered: the vendor's retry is taken."""
    src = make_source("chatwoot", queue_size=1)
    async with serving(src) as (base, [sink]):
        sink.gate = asyncio.Event()
        bodies = [_created(c) for c in (1, 2, 3)]
        heads = [chatwoot_headers(b, delivery=f"d{i}") for i, b in enumerate(bodies)]
        for b, h in zip(bodies, heads, strict=True):
            await _post(base + src.path, b, h)
        sink.gate.set()
        await until(lambda: len(sink.events) == 2)
        status, _, _ = await _post(base + src.path, bodies[2], heads[2])
        await until(lambda: len(sink.events) == 3)
    assert status == 200


async def test_deliveries_answered_200_are_handed_over_when_the_source_stops() -> None:
    """Stopped (cancelled, as the daemon's shutdown does) with the engine busy, the source still
    hands over every delivery it answered 200: the one it was emitting and the ones queued behind
    it (they used to be dropped, and the vendor does not send a delivery it was told was taken)."""
    src = make_source("chatwoot")
    sink = RecordingSink()
    sink.gate = asyncio.Event()
    async with serving(src, run=False) as (base, _):
        task = asyncio.create_task(src.run(sink))
        await until(lambda: sink.up)
        codes = []
        for conv in range(1, 4):
            body = _created(conv)
            status, _, _ = await _post(base + src.path, body, chatwoot_headers(body))
            codes.append(status)
        await asyncio.sleep(0.05)
        task.cancel()
        sink.gate.set()
        await asyncio.gather(task, return_exceptions=True)
    assert codes == [200, 200, 200]
    assert sink.kinds() == ["arrived", "arrived", "arrived"]


async def test_not_running_answers_503() -> None:
    """Routes mounted before the source runs answer 503 rather than taking what they cannot queue."""
    src = make_source("chatwoot")
    async with serving(src, run=False) as (base, _):
        body = _created()
        status, headers, _ = await _post(base + src.path, body, chatwoot_headers(body))
    assert (status, headers.get("Retry-After")) == (503, "1")


async def test_body_shorter_than_its_length_is_malformed(caplog: pytest.LogCaptureFixture) -> None:
    """A client that promises 100 bytes, sends 10 and hangs up: counted as malformed (answered 400
    if it still listens), nothing ingested, no server error."""
    src = make_source("native")
    async with serving(src) as (base, [sink]):
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST {src.path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            "Content-Length: 100\r\n\r\n".encode()
            + b'{"version"'
        )
        await writer.drain()
        writer.write_eof()
        status_line = await reader.readline()
        writer.close()
        await until(lambda: src.rejected["malformed"] == 1)
    assert status_line in (b"", b"HTTP/1.1 400 Bad Request\r\n")
    assert sink.events == []
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize("bad", [0, 10, 1e308])
async def test_a_feedback_score_off_the_1_to_5_scale_is_malformed_at_its_key_path(bad: float) -> None:
    """A native feedback score outside 1–5 (an NPS 10, a 1e308) is refused 400 naming its key, with
    its batch; it used to be taken, and a 1e308 beside a 5 made the step's CSAT 2.5."""
    src = make_source("native")
    async with serving(src) as (base, [sink]):
        now = time.time()
        five = {"ts": now, "kind": "feedback", "contact_id": "c1", "queue": "q", "score": 5}
        odd = {"ts": now, "kind": "feedback", "contact_id": "c2", "queue": "q", "score": bad}
        body = body_of({"version": 1, "events": [five, odd]})
        status, _, text = await _post(base + src.path, body, native_headers(body))
        await asyncio.sleep(0.05)
    assert status == 400 and b"events[1].score: expected 1 to 5" in text
    assert src.rejected == {"malformed": 1} and sink.events == []
