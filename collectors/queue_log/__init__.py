"""Asterisk queue_log collector: tails the file, maps every standard verb, resumes exactly once."""

from __future__ import annotations

from collectors.queue_log.parser import KNOWN_VERBS, QueueLogParser
from collectors.queue_log.source import QueueLogSource
from collectors.queue_log.tailer import FileTailer

__all__ = ["KNOWN_VERBS", "FileTailer", "QueueLogParser", "QueueLogSource"]
