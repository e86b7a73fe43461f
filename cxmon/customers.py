"""Customer keys: one normalization for every source, so one person is one customer on every channel.

A key is, in order of preference: a phone number in E.164 (``+447700900123``, normalized with the
``phonenumbers`` library and the configured default region for numbers written without a country
code), an e-mail address case-folded, or a helpdesk's own contact id written ``system:id``. A source
that knows two of them for the same person (a chat widget that asked for both, a helpdesk contact
with a phone number) teaches the :class:`Directory` that they are one person, so a later contact that
carries only the e-mail address lands on the same key as the call that carried only the number.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# phonenumbers (about 30 ms to import) is imported where a number needs it: most caller ids are
# bare digits or E.164 already, and every command that loads the config would otherwise pay for it.

_UNKNOWN = frozenset({"", "anonymous", "unknown", "unavailable", "private", "restricted", "withheld", "none"})
_FORMATTING = re.compile(r"[\s().\-/]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ALIASES_MAX = 200_000
"""Learned aliases kept (oldest forgotten first): memory stays bounded whatever the input."""


@lru_cache(maxsize=65_536)
def normalize_phone(raw: str, region: str | None = None) -> str | None:
    """Return ``raw`` as an E.164 number, or None when it is not a phone number.

    Numbers written with a ``+`` (or ``00``) need no region; national numbers are read in
    ``region`` (ISO 3166 alpha-2, e.g. ``GB``). Without a region a national number keeps its
    digits as they are, so two sources that write it the same way still agree. Anonymous or
    withheld caller ids give None.

    Args:
        raw: the number as the source wrote it.
        region: the default region for numbers without a country code.

    Returns:
        The E.164 form (``+447700900123``), the bare digits of an unplaceable number, or None.
    """
    text = raw.strip()
    if text.isdigit() and not text.startswith("00"):
        # The common case of a telephony log: bare digits (a national number, or an extension).
        if not region:
            return text
        compact = text
    elif text.startswith("+") and text[1:].isdigit() and 8 <= len(text) - 1 <= 15:
        return text  # already E.164
    else:
        if text.lower() in _UNKNOWN:
            return None
        compact = _FORMATTING.sub("", text)
        if compact.startswith("00") and compact[2:].isdigit():
            compact = "+" + compact[2:]
            if 8 <= len(compact) - 1 <= 15 and text.isdigit():
                return compact  # 00 is the international prefix: the digits are E.164 already
        if compact.startswith("+") and compact[1:].isdigit() and 8 <= len(compact) - 1 <= 15:
            import phonenumbers

            try:
                number = phonenumbers.parse(text if "(0)" in text else compact, None)
            except phonenumbers.NumberParseException:
                return compact
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if not compact.isdigit():
            return None
        if not region:
            return compact
    import phonenumbers

    try:
        number = phonenumbers.parse(compact, region)
    except phonenumbers.NumberParseException:
        return compact
    if phonenumbers.is_possible_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return compact


def normalize_email(raw: str) -> str | None:
    """Return an e-mail address case-folded and trimmed, or None when ``raw`` is not one."""
    text = raw.strip().casefold()
    if text.startswith("mailto:"):
        text = text[7:]
    return text if _EMAIL.match(text) else None


def normalize_any(raw: str, region: str | None = None) -> str | None:
    """Return the key of ``raw`` whatever it is: an e-mail address, a phone number, or ``system:id``."""
    text = raw.strip()
    if "@" in text:
        return normalize_email(text)
    phone = normalize_phone(text, region)
    if phone is not None:
        return phone
    return text or None


class Directory:
    """Aliases learned from sources that know two keys for one person (bounded, oldest first out)."""

    def __init__(self, limit: int = ALIASES_MAX) -> None:
        """Create an empty directory keeping at most ``limit`` aliases."""
        self._aliases: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def learn(self, alias: str, key: str) -> None:
        """Remember that ``alias`` (an e-mail address or a contact id) is the customer ``key``."""
        if alias == key:
            return
        self._aliases[alias] = key
        self._aliases.move_to_end(alias)
        while len(self._aliases) > self._limit:
            self._aliases.popitem(last=False)

    def resolve(self, alias: str) -> str:
        """Return the key ``alias`` is known by (itself when nothing says otherwise)."""
        return self._aliases.get(alias, alias)

    def __len__(self) -> int:
        return len(self._aliases)


DIRECTORY = Directory()
"""The process's directory: every source stitches through it."""


@dataclass(frozen=True, slots=True)
class CustomerKeys:
    """How one source turns what it knows about a person into the customer key."""

    region: str | None = None
    """Default region (ISO 3166 alpha-2) for phone numbers without a country code."""
    system: str = ""
    """Prefix of the source's own contact ids (``zendesk`` → ``zendesk:123``)."""
    mapping: Mapping[str, str] = field(default_factory=dict)
    """The source's own contact id → phone number or e-mail address (already normalized)."""
    directory: Directory = field(default=DIRECTORY, compare=False)

    def key(self, *, phone: Any = None, email: Any = None, contact: Any = None) -> str | None:
        """Return the customer key for what a payload says about the person (any may be None).

        The phone number wins, then the e-mail address, then the mapping table's entry for the
        contact id, then the contact id itself; whatever else was given is learned as an alias of
        the winner, so the other channels find the same customer.
        """
        keys: list[str] = []
        if isinstance(phone, str | int) and not isinstance(phone, bool):
            p = normalize_phone(str(phone), self.region)
            if p is not None:
                keys.append(p)
        if isinstance(email, str):
            e = normalize_email(email)
            if e is not None:
                keys.append(self.directory.resolve(e) if not keys else e)
        own: str | None = None
        if isinstance(contact, str | int) and not isinstance(contact, bool) and str(contact).strip():
            ident = str(contact).strip()
            mapped = self.mapping.get(ident)
            if mapped is not None:
                keys.append(self.directory.resolve(mapped) if not keys else mapped)
            own = f"{self.system}:{ident}" if self.system else ident
        if not keys:
            if own is None:
                return None
            return self.directory.resolve(own)
        winner = keys[0]
        for alias in keys[1:]:
            self.directory.learn(alias, winner)
        if own is not None:
            self.directory.learn(own, winner)
        return winner


def parse_mapping(raw: object, region: str | None, path: str, problems: list[str]) -> dict[str, str]:
    """Read a ``customers = { "<contact id>" = "<phone or e-mail>" }`` table, normalizing the values.

    Problems are appended to ``problems`` with their key path.
    """
    out: dict[str, str] = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        problems.append(f"{path}: expected a table of contact id = phone number or e-mail address")
        return out
    for ident, value in raw.items():
        key = None
        if isinstance(value, str):
            key = normalize_email(value) if "@" in value else normalize_phone(value, region)
        if key is None:
            problems.append(f"{path}.{ident}: expected a phone number or an e-mail address, got {value!r}")
            continue
        out[str(ident)] = key
    return out


def check_region(value: object) -> str | None:
    """Return a region code upper-cased.

    Raises:
        ValueError: ``value`` is not a region ``phonenumbers`` knows.
    """
    if value is None:
        return None
    import phonenumbers

    if not isinstance(value, str) or value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(value)
    return value.upper()


__all__ = [
    "DIRECTORY",
    "CustomerKeys",
    "Directory",
    "check_region",
    "normalize_any",
    "normalize_email",
    "normalize_phone",
    "parse_mapping",
]
