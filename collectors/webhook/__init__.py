"""Webhook collector: signed callbacks from helpdesks and contact-centre platforms, or cxmon's own."""

from __future__ import annotations

from collectors.webhook.source import WebhookSource

__all__ = ["WebhookSource"]
