"""The suite's own helpers: what the tests rely on them for."""

from __future__ import annotations

from tests.helpers import free_port


def test_free_port_never_hands_out_the_same_port_twice() -> None:
    """Ports asked for in one run are all different, though the kernel, asked 500 times, offers
    some port again (it picks at random among the free ones): two servers of one test never get
    the same port."""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
