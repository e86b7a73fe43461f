"""The metric catalogue: where each measure is exported (name, picking labels, help), for every consumer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

SERIES_LABELS = ("step", "channel", "queue")
OUTCOMES = ("offered", "answered", "abandoned", "short_abandoned", "lost")
"""Values of the ``outcome`` label of ``cxmon_contacts_total`` and ``cxmon_window_contacts``."""
ALERT_SINKS = ("alertmanager", "webhook", "log")
WEBHOOK_REJECTIONS = (
    "unsigned",
    "bad_signature",
    "stale_timestamp",
    "replayed",
    "too_large",
    "wrong_method",
    "wrong_content_type",
    "malformed",
    "queue_full",
    "not_running",
    "other",
)
"""Values of the ``reason`` label of ``cxmon_webhook_rejected_total``: why a webhook request was
refused (``other`` stands for any reason not listed, so input cannot add label values)."""


@dataclass(frozen=True, slots=True)
class MetricRef:
    """Where a measure is exported: the metric name and the labels that pick the measure out."""

    name: str
    labels: Mapping[str, str]
    help: str

    def selector(self, **matchers: str) -> str:
        """Return a PromQL selector, e.g. ``cxmon_window_contacts{outcome="offered",step="x"}``."""
        parts = [f'{k}="{v}"' for k, v in self.labels.items()]
        for key, value in matchers.items():
            op = "=~" if key.endswith("__re") else "="
            parts.append(f'{key.removesuffix("__re")}{op}"{value}"')
        return f"{self.name}{{{','.join(parts)}}}"


def _ref(name: str, help_: str, **labels: str) -> MetricRef:
    return MetricRef(name, MappingProxyType(labels), help_)


WINDOW_METRICS: dict[str, MetricRef] = {
    **{
        o: _ref("cxmon_window_contacts", "Contacts in the rolling window, by outcome.", outcome=o)
        for o in OUTCOMES
    },
    "service_level": _ref(
        "cxmon_service_level_ratio", "Service level in the window (formula in build info)."
    ),
    "asa": _ref("cxmon_asa_seconds", "Average speed of answer in the window."),
    "wait_p50": _ref("cxmon_wait_p50_seconds", "Median wait of contacts that left the queue in the window."),
    "wait_p90": _ref("cxmon_wait_p90_seconds", "90th percentile wait of contacts that left the queue."),
    "wait_p99": _ref("cxmon_wait_p99_seconds", "99th percentile wait of contacts that left the queue."),
    "abandon_rate": _ref("cxmon_abandon_ratio", "Abandoned (less short abandons) over contacts that left."),
    "resolution_p50": _ref("cxmon_resolution_p50_seconds", "Median resolution time in the window."),
    "resolution_p90": _ref("cxmon_resolution_p90_seconds", "90th percentile resolution time in the window."),
    "escalations": _ref("cxmon_window_escalations", "Escalated contacts in the rolling window."),
    "escalation_rate": _ref("cxmon_escalation_ratio", "Escalations over answered contacts in the window."),
    "transfers": _ref("cxmon_window_transfers", "Transferred contacts in the rolling window."),
    "reopen_rate": _ref("cxmon_reopen_ratio", "Reopened over resolved contacts in the window."),
    "csat": _ref("cxmon_csat_score", "Mean feedback score (1-5) in the window."),
    "response_rate": _ref("cxmon_survey_response_ratio", "Surveys answered over surveys sent in the window."),
    "resolved": _ref("cxmon_window_resolutions", "Resolved contacts in the rolling window."),
    "feedback": _ref("cxmon_window_feedback_responses", "Feedback scores received in the rolling window."),
    "surveys": _ref("cxmon_window_surveys", "Surveys sent (feedback without a score) in the rolling window."),
    "next_reply_in_target": _ref(
        "cxmon_next_reply_in_target_ratio",
        "Next replies within the step's next-reply target over next replies in the window.",
    ),
    "next_replies": _ref(
        "cxmon_window_next_replies", "Agents' replies to customers' later messages in the rolling window."
    ),
}
"""Windowed measure (plus the volumes thresholds are gated on: resolved, feedback, surveys,
next_replies) → its gauge."""

INSTANT_METRICS: dict[str, MetricRef] = {
    "waiting_now": _ref("cxmon_waiting_contacts", "Contacts waiting in queue now (paused tickets are not)."),
    "longest_wait_now": _ref(
        "cxmon_longest_wait_seconds",
        "Longest current wait in queue (business time on a step with a calendar, paused time left out).",
    ),
    "agents_staffed": _ref("cxmon_agents_staffed", "Agents logged in."),
    "agents_available": _ref("cxmon_agents_available", "Agents ready to take a contact."),
    "occupancy": _ref("cxmon_occupancy_ratio", "Share of staffed agents busy with contacts."),
    "backlog": _ref("cxmon_backlog_contacts", "Open contacts (tickets, emails) now."),
    "aged_backlog": _ref("cxmon_aged_backlog_contacts", "Open contacts older than the step's target."),
}
"""Instant measure → its gauge (labels step, channel, queue)."""

TOTAL_COUNTERS: dict[str, tuple[str, str]] = {
    "escalated": ("cxmon_escalations", "Escalated contacts since start."),
    "transferred": ("cxmon_transfers", "Transferred contacts since start."),
    "resolved": ("cxmon_resolutions", "Resolved contacts since start."),
    "reopened": ("cxmon_reopens", "Reopened contacts since start."),
}
"""SeriesFigures.totals key → counter family name (rendered with ``_total``) and help."""


def metric_for(measure: str) -> MetricRef:
    """Return where ``measure`` is exported (rules and dashboards use this, so they cannot drift).

    Raises:
        KeyError: not a known measure.
    """
    if measure in WINDOW_METRICS:
        return WINDOW_METRICS[measure]
    return INSTANT_METRICS[measure]
