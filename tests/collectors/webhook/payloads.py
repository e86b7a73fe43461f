"""Vendor payloads for the webhook tests, each written from the vendor's documented schema.

Sources (the shapes, field names and value formats follow these; ids and times are the tests'):
- Chatwoot: "Webhook Events" (chatwoot/docs, docs/product/others/webhook-events.md) — the
  conversation object with ``meta.sender``, ``message_created`` with ``sender``/``conversation``,
  and the CSAT survey message (``content_type: input_csat``, ``content_attributes.submitted_values
  .csat_survey_response``); signing: ``X-Chatwoot-Signature: sha256=HMAC(timestamp + "." + body)``.
- Zendesk: developer.zendesk.com "Webhook event types" and "Ticket events" (``type``,
  ``account_id``, ``id``, ``time``, ``zendesk_event_version``, ``subject``, ``detail``, ``event``),
  "Verifying webhook authenticity" (base64 HMAC-SHA256 of timestamp + body); the Support API's
  ``satisfaction_rating`` object for ratings.
- Twilio TaskRouter: "TaskRouter Events reference" (EventType, AccountSid, WorkspaceSid, ResourceType,
  ResourceSid, Timestamp, Task* and TaskQueue* fields), form-encoded; "Webhooks security".
- Amazon Connect: "Amazon Connect contact events" (EventBridge envelope with ``detail-type: Amazon
  Connect Contact Event``; ``detail`` with ``eventType``, ``contactId``, ``channel``,
  ``queueInfo``, ``AgentInfo``/``agentInfo`` — the vendor's own samples mix the case).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso(ts: float, millis: bool = False) -> str:
    """Epoch seconds as the ISO 8601 text vendors send."""
    dt = datetime.fromtimestamp(ts, UTC)
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------- Chatwoot


def chatwoot_conversation(
    event: str,
    conv_id: int,
    ts: float,
    *,
    status: str = "open",
    email: str | None = "jane@acme.inc",
    phone: str | None = None,
    contact_id: int = 12,
    inbox_id: int = 1,
    created: float | None = None,
) -> dict[str, Any]:
    """A conversation_* event: the conversation object itself, with ``event``."""
    created = ts if created is None else created
    return {
        "additional_attributes": {
            "browser": {
                "device_name": "Unknown",
                "browser_name": "Chrome",
                "platform_name": "macOS",
                "browser_version": "92.0.4515.107",
                "platform_version": "10.15.7",
            },
            "referer": "http://localhost:3000/widget_tests",
            "initiated_at": {"timestamp": "Fri Jul 23 2021 23:32:48 GMT+0530 (India Standard Time)"},
        },
        "can_reply": True,
        "channel": "Channel::WebWidget",
        "id": conv_id,
        "inbox_id": inbox_id,
        "contact_inbox": {
            "id": 12,
            "contact_id": contact_id,
            "inbox_id": inbox_id,
            "source_id": "405f1d30-1af3-4fa0-8ffd-11ea3f86101e",
            "created_at": iso(created, millis=True),
            "updated_at": iso(created, millis=True),
            "hmac_verified": False,
        },
        "messages": [],
        "meta": {
            "sender": {
                "additional_attributes": {},
                "custom_attributes": {},
                "email": email,
                "id": contact_id,
                "identifier": None,
                "name": "jane",
                "phone_number": phone,
                "thumbnail": "",
                "type": "contact",
            },
            "assignee": {"id": 1, "name": "John", "available_name": "John", "type": "user"},
        },
        "status": status,
        "unread_count": 0,
        "agent_last_seen_at": int(ts),
        "contact_last_seen_at": 0,
        "created_at": int(created),
        "updated_at": ts,
        "timestamp": int(ts),
        "event": event,
    }


def chatwoot_message(
    msg_id: int,
    conv_id: int,
    ts: float,
    *,
    outgoing: bool,
    private: bool = False,
    created: float | None = None,
    email: str | None = "jane@acme.inc",
    phone: str | None = None,
) -> dict[str, Any]:
    """A message_created event (an agent's reply when ``outgoing``, else the customer's message)."""
    conv = chatwoot_conversation("", conv_id, ts, email=email, phone=phone, created=created)
    del conv["event"]
    return {
        "id": msg_id,
        "content": "Let me check that for you" if outgoing else "hi",
        "created_at": iso(ts, millis=True),
        "message_type": "outgoing" if outgoing else "incoming",
        "content_type": "text",
        "private": private,
        "content_attributes": {},
        "source_id": None,
        "sender": {"id": 1, "name": "John", "email": "john@acme.inc", "type": "user"}
        if outgoing
        else {"id": 12, "name": "jane", "avatar": "", "type": "contact"},
        "inbox": {"id": 1, "name": "Acme Support"},
        "conversation": conv,
        "account": {"id": 1, "name": "Acme Inc"},
        "event": "message_created",
    }


def chatwoot_csat(
    msg_id: int, conv_id: int, ts: float, rating: int, feedback: str, *, email: str | None = "jane@acme.inc"
) -> dict[str, Any]:
    """A message_updated event for the CSAT survey message once the customer has answered it."""
    conv = chatwoot_conversation("", conv_id, ts, email=email)
    del conv["event"]
    return {
        "id": msg_id,
        "content": "Please rate the conversation",
        "created_at": iso(ts - 60, millis=True),
        "updated_at": iso(ts, millis=True),
        "message_type": "template",
        "content_type": "input_csat",
        "private": False,
        "content_attributes": {
            "submitted_values": {"csat_survey_response": {"rating": rating, "feedback_message": feedback}}
        },
        "source_id": None,
        "sender": None,
        "inbox": {"id": 1, "name": "Acme Support"},
        "conversation": conv,
        "account": {"id": 1, "name": "Acme Inc"},
        "event": "message_updated",
    }


# ---------------------------------------------------------------------- Zendesk


def zendesk_ticket(
    kind: str,
    event_id: str,
    ticket: int,
    ts: float,
    event: dict[str, Any],
    *,
    created: float,
    status: str = "OPEN",
    group_id: int = 360001,
    requester_id: int = 7881,
    channel: str = "email",
) -> dict[str, Any]:
    """A ``zen:event-type:ticket.<kind>`` event."""
    return {
        "type": f"zen:event-type:ticket.{kind}",
        "account_id": 12514403,
        "id": event_id,
        "time": iso(ts),
        "zendesk_event_version": "2022-11-06",
        "subject": f"zen:ticket:{ticket}",
        "detail": {
            "actor_id": "8447388090494",
            "assignee_id": "8447388090494",
            "brand_id": "8447346621310",
            "created_at": iso(created),
            "custom_status": "8447388092542",
            "description": "My printer is on fire!",
            "external_id": None,
            "form_id": "8646151517822",
            "group_id": str(group_id),
            "id": str(ticket),
            "is_public": True,
            "organization_id": "8447346622462",
            "priority": "LOW",
            "requester_id": str(requester_id),
            "status": status,
            "subject": "Help, my printer is on fire!",
            "submitter_id": str(requester_id),
            "tags": ["printer"],
            "type": "TASK",
            "updated_at": iso(ts),
            "via": {"channel": channel},
        },
        "event": event,
    }


def zendesk_comment(author_staff: bool, public: bool = True, comment_id: int = 1) -> dict[str, Any]:
    """The ``event`` object of ``ticket.comment_added``."""
    return {
        "comment": {
            "id": str(comment_id),
            "body": "Thanks, we are on it.",
            "is_public": public,
            "author": {
                "id": "8447388090494",
                "is_staff": author_staff,
                "name": "Agent" if author_staff else "Jane",
            },
        }
    }


def zendesk_rating(
    rating_id: int, ticket: int, ts: float, score: str, comment: str, *, requester_id: int = 7881
) -> dict[str, Any]:
    """A trigger webhook body holding a Support API ``satisfaction_rating`` object."""
    return {
        "satisfaction_rating": {
            "id": rating_id,
            "url": f"https://example.zendesk.com/api/v2/satisfaction_ratings/{rating_id}.json",
            "assignee_id": 135,
            "group_id": 360001,
            "requester_id": requester_id,
            "ticket_id": ticket,
            "score": score,
            "comment": comment,
            "created_at": iso(ts),
            "updated_at": iso(ts),
        }
    }


# ---------------------------------------------------------------------- Twilio TaskRouter


def taskrouter(event_type: str, sid: str, task: str, ts: float, **extra: str) -> dict[str, str]:
    """A TaskRouter event callback's form parameters."""
    params = {
        "EventType": event_type,
        "AccountSid": "AC" + "0" * 32,
        "WorkspaceSid": "WS" + "1" * 32,
        "WorkspaceName": "Acme",
        "EventDescription": f"{event_type} for {task}",
        "ResourceType": "Task",
        "ResourceSid": task,
        "Sid": sid,
        "Timestamp": str(int(ts)),
        "TimestampMs": str(int(ts * 1000)),
        "TaskSid": task,
        "TaskAttributes": '{"from":"+14158675310","to":"+18005551212","direction":"inbound"}',
        "TaskAge": "0",
        "TaskPriority": "0",
        "TaskAssignmentStatus": "pending",
        "TaskChannelUniqueName": "voice",
        "TaskChannelSid": "TC" + "2" * 32,
        "TaskQueueSid": "WQ" + "3" * 32,
        "TaskQueueName": "billing",
        "WorkflowSid": "WW" + "4" * 32,
        "WorkflowName": "Default",
    }
    params.update(extra)
    return params


# ---------------------------------------------------------------------- Amazon Connect


def connect_event(
    event_type: str,
    event_id: str,
    contact: str,
    ts: float,
    *,
    enqueued: float | None = None,
    connected: float | None = None,
    disconnected: float | None = None,
    capitalised_agent: bool = False,
    channel: str = "VOICE",
) -> dict[str, Any]:
    """An EventBridge ``Amazon Connect Contact Event``."""
    detail: dict[str, Any] = {
        "eventType": event_type,
        "contactId": contact,
        "initialContactId": contact,
        "channel": channel,
        "instanceArn": "arn:aws:connect:us-west-2:123456789012:instance/12345678-1234-1234-1234-123456789012",
        "initiationMethod": "INBOUND",
        "initiationTimestamp": iso((enqueued or ts) - 20, millis=True),
    }
    if enqueued is not None:
        detail["queueInfo"] = {
            "queueArn": "arn:aws:connect:us-west-2:123456789012:instance/12345678-1234-1234-1234-"
            "123456789012/queue/billing-queue-id",
            "queueType": "STANDARD",
            "enqueueTimestamp": iso(enqueued, millis=True),
        }
    if connected is not None:
        key = "AgentInfo" if capitalised_agent else "agentInfo"
        detail[key] = {
            (
                "AgentArn" if capitalised_agent else "agentArn"
            ): "arn:aws:connect:us-west-2:123456789012:agent/a1",
            "connectedToAgentTimestamp": iso(connected, millis=True),
        }
    if disconnected is not None:
        detail["disconnectTimestamp"] = iso(disconnected, millis=True)
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "account": "123456789012",
        "time": iso(ts),
        "region": "us-west-2",
        "resources": ["arn:aws:connect:us-west-2:123456789012:instance/12345678-1234-1234-1234-123456789012"],
        "detail": detail,
    }
