"""The ``[hub]`` table: address, tokens from the file or the environment, and their checks."""

from __future__ import annotations

import pytest

from cxmon.errors import ConfigError
from tests.helpers import one_step_config


def test_hub_defaults_to_loopback_8765_without_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """No [hub] table: 127.0.0.1:8765, enabled, no tokens."""
    monkeypatch.delenv("CXMON_HUB_VIEWER_TOKEN", raising=False)
    monkeypatch.delenv("CXMON_HUB_ACK_TOKEN", raising=False)
    hub = one_step_config().hub
    assert (hub.host, hub.port, hub.enabled, hub.viewer_token, hub.ack_token) == (
        "127.0.0.1",
        8765,
        True,
        None,
        None,
    )


def test_hub_tokens_come_from_the_file_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """viewer_token from the file, ack_token from CXMON_HUB_ACK_TOKEN."""
    monkeypatch.setenv("CXMON_HUB_ACK_TOKEN", "fix")
    hub = one_step_config('\n[hub]\nlisten = "0.0.0.0:9000"\nviewer_token = "see"\n').hub
    assert (hub.host, hub.port, hub.viewer_token, hub.ack_token) == ("0.0.0.0", 9000, "see", "fix")


def test_the_same_token_for_both_roles_is_refused() -> None:
    """A viewer token equal to the ack token would let viewers acknowledge: a config problem."""
    with pytest.raises(ConfigError) as err:
        one_step_config('\n[hub]\nviewer_token = "x"\nack_token = "x"\n')
    assert err.value.problems == ["hub.ack_token: must differ from viewer_token"]
