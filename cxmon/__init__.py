"""cxmon: a live service-level monitor for customer-service operations."""

from __future__ import annotations

__version__ = "0.1.0"
