"""Sources that turn what contact centres produce into ContactEvents."""

from __future__ import annotations

import cxmon  # noqa: F401  (installs the CXMON_PURE switch before a compiled collector module loads)
