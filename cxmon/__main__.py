"""Entry point for ``python -m cxmon``."""

from __future__ import annotations

from cxmon.cli import main

raise SystemExit(main())
