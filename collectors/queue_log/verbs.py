"""The queue_log verbs cxmon gives a meaning to, grouped by what they do to a call or a queue member."""

from __future__ import annotations

EXITS: dict[str, tuple[str, int]] = {
    "ABANDON": ("hangup", 3),
    "EXITWITHTIMEOUT": ("timeout", 3),
    "EXITEMPTY": ("empty", 3),
    "EXITWITHKEY": ("key", 4),
}
"""A caller left the queue unanswered: verb → (reason, index of the wait among the data fields, 1-based)."""
TRANSFERS = frozenset({"TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"})
"""An answered call was transferred (its target in the data fields)."""
COMPLETES = frozenset({"COMPLETECALLER", "COMPLETEAGENT"})
"""An answered call ended (its talk time in the data fields)."""
RINGS = frozenset({"RINGNOANSWER", "RINGCANCELED", "AGENTDUMP"})
"""An agent was rung and did not take the call: counted, not a contact outcome."""
MEMBER = frozenset(
    {
        "ADDMEMBER",
        "REMOVEMEMBER",
        "PAUSE",
        "UNPAUSE",
        "PAUSEALL",
        "UNPAUSEALL",
        "AGENTLOGIN",
        "AGENTLOGOFF",
        "AGENTCALLBACKLOGIN",
        "AGENTCALLBACKLOGOFF",
    }
)
"""A queue member joined, left, paused or came back (collectors.queue_log.staffing)."""
PASSED = frozenset({"QUEUESTART", "CONFIGRELOAD"})
"""Asterisk restarted or reloaded."""
CALL_VERBS = frozenset({"ENTERQUEUE", "CONNECT", *EXITS, *TRANSFERS, *COMPLETES})
"""The verbs that need a call id and a queue."""
KNOWN_VERBS: frozenset[str] = frozenset(
    {"ENTERQUEUE", "CONNECT", *EXITS, *TRANSFERS, *COMPLETES, *RINGS, *MEMBER, *PASSED}
)
"""Every verb the parser gives a meaning to; anything else is counted under ``other_verbs``."""
