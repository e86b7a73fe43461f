"""Options of the webhook collector: which vendor, where it posts, how it is authenticated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cxmon.customers import check_region, parse_mapping

# The config module's section reader reports unknown keys with a did-you-mean and every bad value with
# its key path; collectors follow the same rules, so they reuse it.
from cxmon.validation import Problems, Section, integer, positive_duration, string

ADAPTER_NAMES = ("chatwoot", "zendesk", "twilio_taskrouter", "amazon_connect", "native")


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """A validated ``[[collectors]]`` table of type "webhook"."""

    adapter: str
    secret: str
    path: str | None = None
    """URL path; None means ``/webhooks/<name>``."""
    tolerance: float = 300.0
    """Seconds a signed timestamp may be from the clock; delivery ids are remembered this long."""
    max_body: int = 256 * 1024
    queue_size: int = 1024
    """Deliveries waiting for the engine; a full queue answers 503 with Retry-After."""
    heartbeat: float = 15.0
    region: str | None = None
    queues: Mapping[str, str] = field(default_factory=dict)
    channels: Mapping[str, str] = field(default_factory=dict)
    channel: str = ""
    feedback_channel: str = "survey"
    customers: Mapping[str, str] = field(default_factory=dict)
    header: str = "Authorization"
    public_url: str | None = None
    contacts: int = 100_000
    """Contacts whose state the adapter keeps (least recently touched forgotten first)."""


def _table(sec: Section, name: str) -> dict[str, str]:
    raw = sec.raw(name)
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) and v for v in raw.values()):
        sec.problems.add(sec.key(name), 'expected a table of "vendor id" = "name"')
        return {}
    return {str(k): v for k, v in raw.items()}


def parse_options(options: dict[str, Any], path: str) -> tuple[WebhookOptions | None, list[str]]:
    """Validate a webhook collector table.

    Returns:
        (options, problems): options is None when there are problems.
    """
    problems = Problems()
    sec = Section(options, path, problems)
    adapter = sec.get("adapter", string, "", f"one of {', '.join(ADAPTER_NAMES)}", required=True)
    if adapter and adapter not in ADAPTER_NAMES:
        problems.add(sec.key("adapter"), f"unknown adapter {adapter!r}; known: {', '.join(ADAPTER_NAMES)}")
    url_path = sec.get("path", string, "", 'a URL path like "/webhooks/zendesk"')
    if url_path and not url_path.startswith("/"):
        problems.add(sec.key("path"), f"must start with '/', got {url_path!r}")
    secret = sec.get("secret", string, "", "a string")
    secret_env = sec.get("secret_env", string, "", "an environment variable name")
    if secret and secret_env:
        problems.add(sec.key("secret"), "give secret or secret_env, not both")
    elif secret_env:
        secret = os.environ.get(secret_env, "")
        if not secret:
            problems.add(sec.key("secret_env"), f"environment variable {secret_env} is not set")
    elif not secret:
        problems.add(sec.key("secret"), "required: secret or secret_env (requests are never taken unsigned)")
    tolerance = sec.get("tolerance", positive_duration, 300.0, 'a duration like "5m"')
    max_body = sec.get("max_body", integer(1), 256 * 1024, "a number of bytes ≥ 1")
    queue_size = sec.get("queue_size", integer(1), 1024, "a whole number ≥ 1")
    heartbeat = sec.get("heartbeat", positive_duration, 15.0, 'a duration like "15s"')
    region = sec.get("region", check_region, None, 'a region code like "GB"')
    queues = _table(sec, "queues")
    channels = _table(sec, "channels")
    channel = sec.get("channel", string, "", "a channel name")
    feedback_channel = sec.get("feedback_channel", string, "survey", "a channel name")
    mapping_problems: list[str] = []
    customers = parse_mapping(sec.raw("customers"), region, sec.key("customers"), mapping_problems)
    problems.items.extend(mapping_problems)
    header = sec.get("header", string, "Authorization", "a header name")
    public_url = sec.get("public_url", string, "", "a URL")
    contacts = sec.get("contacts", integer(1), 100_000, "a whole number ≥ 1")
    if adapter != "amazon_connect" and "header" in sec.data:
        problems.add(sec.key("header"), "only the amazon_connect adapter reads a secret from a header")
    if adapter != "twilio_taskrouter" and public_url:
        problems.add(sec.key("public_url"), "only the twilio_taskrouter adapter signs the URL")
    sec.finish()
    if problems.items:
        return None, problems.items
    return (
        WebhookOptions(
            adapter=adapter,
            secret=secret,
            path=url_path or None,
            tolerance=tolerance,
            max_body=max_body,
            queue_size=queue_size,
            heartbeat=heartbeat,
            region=region,
            queues=queues,
            channels=channels,
            channel=channel,
            feedback_channel=feedback_channel,
            customers=customers,
            header=header,
            public_url=public_url or None,
            contacts=contacts,
        ),
        [],
    )
