"""The dashboard's panels: the tabs in their order, the widget that takes the keys in each, and
what the workers that fill them are called when they fail."""

from __future__ import annotations

TABS = ("matrix", "potholes", "detail", "customers", "events")
PANE_FOCUS = {
    "matrix": "#matrix-table",
    "potholes": "#pothole-board",
    "detail": "#detail-pane",
    "customers": "#leaders",
    "events": "#event-log",
}
"""The widget of each panel that takes the keys when the panel is opened."""
WORKER_FAILED = {
    "_follow_feed": "The feed stopped",
    "_load_leaders": "Strikes list not loaded",
    "_load_path": "Customer's path not loaded",
    "_acknowledge": "Acknowledgement failed",
}
"""The title of the notification a failed worker raises, by worker: what did not happen, in words."""
