"""Options of the websocket collector: where to connect, how to authenticate, how to back off."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cxmon.customers import check_region
from cxmon.validation import Problems, Section, boolean, positive_duration, string

ADAPTER_NAMES = ("native", "genesys_cloud")


@dataclass(frozen=True, slots=True)
class WebsocketOptions:
    """A validated ``[[collectors]]`` table of type "websocket"."""

    adapter: str
    url: str = ""
    """native: the ws:// or wss:// URL."""
    headers: Mapping[str, str] = field(default_factory=dict)
    bearer: str = ""
    """Sent as ``Authorization: Bearer <bearer>`` (native)."""
    min_backoff: float = 1.0
    max_backoff: float = 60.0
    region: str | None = None
    channel: str = ""
    queues: Mapping[str, str] = field(default_factory=dict)
    """Queue id → queue name (genesys_cloud: the queues subscribed to)."""
    api: str = "https://api.mypurecloud.com"
    login: str = "https://login.mypurecloud.com"
    client_id: str = ""
    client_secret: str = ""
    renew_before: float = 3600.0
    """genesys_cloud: a new channel is made this long before the current one expires."""
    proxy: bool = True
    """Use the environment's proxy settings (HTTPS_PROXY …) to reach the server."""


def _secret(sec: Section, name: str) -> str:
    value = sec.get(name, string, "", "a string")
    env = sec.get(f"{name}_env", string, "", "an environment variable name")
    if value and env:
        sec.problems.add(sec.key(name), f"give {name} or {name}_env, not both")
    elif env:
        value = os.environ.get(env, "")
        if not value:
            sec.problems.add(sec.key(f"{name}_env"), f"environment variable {env} is not set")
    return value


def parse_options(options: dict[str, Any], path: str) -> tuple[WebsocketOptions | None, list[str]]:
    """Validate a websocket collector table.

    Returns:
        (options, problems): options is None when there are problems.
    """
    problems = Problems()
    sec = Section(options, path, problems)
    adapter = sec.get("adapter", string, "", f"one of {', '.join(ADAPTER_NAMES)}", required=True)
    if adapter and adapter not in ADAPTER_NAMES:
        problems.add(sec.key("adapter"), f"unknown adapter {adapter!r}; known: {', '.join(ADAPTER_NAMES)}")
    url = sec.get("url", string, "", "a ws:// or wss:// URL")
    if url and not url.startswith(("ws://", "wss://")):
        problems.add(sec.key("url"), f"expected a ws:// or wss:// URL, got {url!r}")
    if adapter == "native" and not url:
        problems.add(sec.key("url"), "required key is missing")
    raw_headers = sec.raw("headers")
    headers: dict[str, str] = {}
    if raw_headers is not None:
        if isinstance(raw_headers, dict) and all(isinstance(v, str) for v in raw_headers.values()):
            headers = {str(k): v for k, v in raw_headers.items()}
        else:
            problems.add(sec.key("headers"), 'expected a table of "Header" = "value"')
    bearer = _secret(sec, "bearer")
    min_backoff = sec.get("min_backoff", positive_duration, 1.0, 'a duration like "1s"')
    max_backoff = sec.get("max_backoff", positive_duration, 60.0, 'a duration like "1m"')
    if max_backoff < min_backoff:
        problems.add(sec.key("max_backoff"), "must not be shorter than min_backoff")
    region = sec.get("region", check_region, None, 'a region code like "GB"')
    channel = sec.get("channel", string, "", "a channel name")
    raw_queues = sec.raw("queues")
    queues: dict[str, str] = {}
    if raw_queues is not None:
        if isinstance(raw_queues, dict) and all(isinstance(v, str) and v for v in raw_queues.values()):
            queues = {str(k): v for k, v in raw_queues.items()}
        else:
            problems.add(sec.key("queues"), 'expected a table of "queue id" = "name"')
    api = sec.get("api", string, "https://api.mypurecloud.com", "a URL")
    login = sec.get("login", string, "https://login.mypurecloud.com", "a URL")
    client_id = sec.get("client_id", string, "", "an OAuth client id")
    client_secret = _secret(sec, "client_secret")
    renew_before = sec.get("renew_before", positive_duration, 3600.0, 'a duration like "1h"')
    proxy = sec.get("proxy", boolean, True, "true or false")
    if adapter == "genesys_cloud":
        if not client_id:
            problems.add(sec.key("client_id"), "required key is missing")
        if not client_secret:
            problems.add(sec.key("client_secret"), "required: client_secret or client_secret_env")
        if not queues:
            problems.add(sec.key("queues"), "required: the queues to subscribe to (id = name)")
    sec.finish()
    if problems.items:
        return None, problems.items
    return (
        WebsocketOptions(
            adapter=adapter,
            url=url,
            headers=headers,
            bearer=bearer,
            min_backoff=min_backoff,
            max_backoff=max_backoff,
            region=region,
            channel=channel,
            queues=queues,
            api=api.rstrip("/"),
            login=login.rstrip("/"),
            client_id=client_id,
            client_secret=client_secret,
            renew_before=renew_before,
            proxy=proxy,
        ),
        [],
    )
