"""``cxmon replay``: a recorded history run back through the engine and the dashboard."""
