"""cxmon: a live service-level monitor for customer-service operations."""

from __future__ import annotations

from cxmon.compiled import install_switch

__version__ = "0.1.0"

install_switch()
