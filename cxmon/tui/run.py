"""``run_dashboard``: the dashboard run by the CLI, in the loop the engine or the hub client shares."""

from __future__ import annotations

from cxmon.tui.app import CxmonApp
from cxmon.tui.feed import Feed


async def run_dashboard(engine: Feed, *, wallboard: bool = False, timezone: str | None = None) -> int:
    """Run the dashboard in the running asyncio loop (the engine shares it) until the user quits.

    Args:
        engine: the feed to show (the Engine, or a hub client).
        wallboard: open on the big-number wall view.
        timezone: the zone times are shown in (default: the feed config's ``[display] timezone``,
            else the machine's; "local": the machine's).

    Returns:
        The exit code: 0 after ``q``, 2 when the dashboard could not start.
    """
    app = CxmonApp(engine, wallboard=wallboard, timezone=timezone)
    await app.run_async()
    # Textual sets a non-zero return code when the app died (e.g. it could not start).
    return 0 if not app.return_code else 2
