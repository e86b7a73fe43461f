"""Webhook adapters by name."""

from __future__ import annotations

from collections.abc import Callable

from collectors.webhook.adapters.chatwoot import ChatwootAdapter
from collectors.webhook.adapters.connect import AmazonConnectAdapter
from collectors.webhook.adapters.native import NativeAdapter
from collectors.webhook.adapters.twilio import TwilioTaskRouterAdapter
from collectors.webhook.adapters.zendesk import ZendeskAdapter
from collectors.webhook.model import Adapter, AdapterOptions

ADAPTERS: dict[str, Callable[[AdapterOptions], Adapter]] = {
    "chatwoot": ChatwootAdapter,
    "zendesk": ZendeskAdapter,
    "twilio_taskrouter": TwilioTaskRouterAdapter,
    "amazon_connect": AmazonConnectAdapter,
    "native": NativeAdapter,
}

__all__ = ["ADAPTERS"]
