"""Screens over the main dashboard: acknowledge, help, wallboard."""
