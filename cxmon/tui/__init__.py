"""The floor manager's dashboard: a Textual app rendering Snapshots (only this package imports textual)."""
