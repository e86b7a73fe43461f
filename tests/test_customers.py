"""Customer keys: one normalization (E.164, case-folded e-mail, contact ids) and stitching by alias."""

from __future__ import annotations

import pytest

from cxmon.customers import CustomerKeys, Directory, normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("07700 900123", "GB", "+447700900123"),
        ("+44 (0)7700-900123", None, "+447700900123"),
        ("0044 7700 900123", None, "+447700900123"),
        ("(415) 867-5310", "US", "+14158675310"),
        ("+1 415 867 5310", "GB", "+14158675310"),
        ("4158675310", None, "4158675310"),
        ("anonymous", "GB", None),
        ("", "GB", None),
        ("jane@example.com", "GB", None),
    ],
)
def test_phone_numbers_are_e164(raw: str, region: str | None, expected: str | None) -> None:
    """Phone numbers in any common writing become E.164 (national ones in the default region)."""
    assert normalize_phone(raw, region) == expected


def test_email_is_case_folded() -> None:
    """E-mail addresses are trimmed and case-folded; a non-address is None."""
    assert normalize_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"
    assert normalize_email("not an address") is None


def test_phone_wins_and_teaches_the_email() -> None:
    """Given both, the phone number is the key, and the e-mail address alone later finds it."""
    keys = CustomerKeys(region="GB", directory=Directory())
    assert keys.key(phone="07700 900123", email="Jane@Example.com") == "+447700900123"
    assert keys.key(email="jane@example.com") == "+447700900123"


def test_contact_id_is_prefixed_and_mapped() -> None:
    """A helpdesk contact id is ``system:id``; the mapping table turns it into the person's key."""
    d = Directory()
    plain = CustomerKeys(system="zendesk", directory=d)
    mapped = CustomerKeys(system="zendesk", mapping={"7881": "jane@example.com"}, directory=d)
    assert plain.key(contact=7882) == "zendesk:7882"
    assert mapped.key(contact="7881") == "jane@example.com"


def test_directory_is_bounded() -> None:
    """The directory forgets its oldest aliases beyond its limit."""
    d = Directory(limit=2)
    for i in range(5):
        d.learn(f"a{i}@x.io", f"+4477009001{i:02d}")
    assert len(d) == 2 and d.resolve("a0@x.io") == "a0@x.io" and d.resolve("a4@x.io") == "+447700900104"
