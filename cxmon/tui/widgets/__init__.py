"""Dashboard widgets: each renders from a Snapshot (and the app's view settings), nothing else."""
