"""The websocket hub: one daemon's snapshots fanned out to every watcher, and the watcher's side."""
