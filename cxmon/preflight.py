"""Start-up checks: the files a run needs can be read (and the database written) before anything starts."""

from __future__ import annotations

import os
from pathlib import Path

from cxmon.config import Config
from cxmon.errors import StartupError


def check_files(config: Config, db_path: str | None) -> None:
    """Check the history database and every collector's ``path`` before the engine starts.

    A missing collector file is left to its collector (a tailer waits for it to appear); one that
    exists but cannot be read, or a database that cannot be written, stops the start with one line.

    Args:
        config: the validated config.
        db_path: the ``--db`` given on the command line, or None for ``[store] path``.

    Raises:
        StartupError: what cannot be read or written, why, and how to fix it.
    """
    _check_database(db_path or config.store.path, "--db FILE" if db_path else "[store] path")
    for collector in config.collectors:
        raw = collector.options.get("path")
        if not isinstance(raw, str) or not raw:
            continue
        key = f"{collector.path or collector.name}.path"
        for candidate in _candidates(raw, config.source):
            if candidate.exists():
                _check_readable(candidate, key)
                break


def _candidates(raw: str, config_source: str) -> list[Path]:
    path = Path(raw).expanduser()
    out = [path]
    if not path.is_absolute() and config_source not in ("", "<memory>"):
        out.append(Path(config_source).parent / path)
    return out


def _check_readable(path: Path, key: str) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise StartupError(
            f"{key}: cannot read {path}: {why}; make it readable by this user or point {key} elsewhere"
        ) from None


def _check_database(path: str, setting: str) -> None:
    if path == ":memory:" or path.startswith("file:"):
        return
    target = Path(path).expanduser()
    hint = f"check its permissions, or pick another file with {setting}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab"):  # SQLite would create it too; a new empty file is a new database
            pass
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise StartupError(f"{path}: cannot write the history database: {why}; {hint}") from None
    folder = target.parent
    if not os.access(folder, os.W_OK | os.X_OK):  # the journal (WAL) files go beside the database
        raise StartupError(
            f"{path}: cannot write the history database's journal in {folder}: permission denied; {hint}"
        )
