"""The webhook collector's table is checked like every source's: each problem with its key path."""

from __future__ import annotations

import pytest

from collectors.registry import validate_collector
from collectors.webhook import WebhookSource
from cxmon.config import loads
from cxmon.errors import ConfigError


def problems(**table: object) -> list[str]:
    return validate_collector("webhook", dict(table), "collectors[0]")


def test_valid_table_has_no_problems() -> None:
    """adapter + secret is enough."""
    assert problems(adapter="zendesk", secret="x") == []


def test_unknown_adapter_is_named() -> None:
    """An unknown adapter is reported with the known ones."""
    [msg] = problems(adapter="freshdesk", secret="x")
    assert msg.startswith("collectors[0].adapter: unknown adapter 'freshdesk'") and "zendesk" in msg


def test_a_secret_is_required() -> None:
    """No secret and no secret_env: a problem (requests are never taken unsigned)."""
    [msg] = problems(adapter="native")
    assert msg.startswith("collectors[0].secret: required")


def test_secret_env_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """secret_env naming an unset variable is a problem; set, it is the secret."""
    monkeypatch.delenv("CXMON_TEST_HOOK_SECRET", raising=False)
    [msg] = problems(adapter="native", secret_env="CXMON_TEST_HOOK_SECRET")
    assert "CXMON_TEST_HOOK_SECRET is not set" in msg
    monkeypatch.setenv("CXMON_TEST_HOOK_SECRET", "abc")
    assert problems(adapter="native", secret_env="CXMON_TEST_HOOK_SECRET") == []


def test_unknown_key_gets_a_hint() -> None:
    """A misspelt key is reported with a did-you-mean."""
    [msg] = problems(adapter="native", secret="x", tolerence="5m")
    assert msg == "collectors[0].tolerence: unknown key (did you mean 'tolerance'?)"


def test_header_is_only_for_amazon_connect() -> None:
    """``header`` on another adapter is a problem."""
    [msg] = problems(adapter="zendesk", secret="x", header="X-Key")
    assert msg.startswith("collectors[0].header:")


def test_bad_customer_mapping_value_is_named() -> None:
    """A mapping value that is neither a phone number nor an e-mail address is named."""
    [msg] = problems(adapter="zendesk", secret="x", customers={"7881": "not a key"})
    assert msg.startswith("collectors[0].customers.7881:")


def test_config_builds_the_source_with_default_path() -> None:
    """A config with a webhook collector validates; the source's path defaults to /webhooks/<name>."""
    from collectors.registry import create_source

    config = loads(
        '[[journey.steps]]\nname = "s"\nmatch = [{ channel = "*" }]\n'
        '[customers]\nregion = "GB"\n'
        '[[collectors]]\ntype = "webhook"\nname = "zd"\nadapter = "zendesk"\nsecret = "x"\n'
    )
    source = create_source(config.collectors[0], config)
    assert isinstance(source, WebhookSource)
    assert source.path == "/webhooks/zd"
    assert config.customer_region == "GB"


def test_unknown_region_is_a_problem() -> None:
    """[customers] region must be a region phonenumbers knows."""
    with pytest.raises(ConfigError) as err:
        loads('[[journey.steps]]\nname = "s"\nmatch = [{ channel = "*" }]\n[customers]\nregion = "XX"\n')
    assert "customers.region" in str(err.value)
