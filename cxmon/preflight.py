"""Start-up checks: the files a run needs can be read (and the database written) before anything starts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cxmon.config import Config
from cxmon.errors import StartupError


def check_files(config: Config, db_path: str | None) -> None:
    """Check the history database and every collector's ``path`` before the engine starts.

    A missing file is left to a collector that follows its file (a queue_log tailer, a jsonl source
    with ``follow = true``: they wait for it to appear). One that a collector reads once (records, a
    jsonl source without ``follow``) is missing work, and stops the start with one line, as does a
    file that exists but cannot be read, or a database that cannot be written.

    Args:
        config: the validated config.
        db_path: the ``--db`` given on the command line, or None for ``[store] path``.

    Raises:
        StartupError: what cannot be read or written, why, and how to fix it.
    """
    check_database(db_path or config.store.path, "--db FILE" if db_path else "[store] path")
    for collector in config.collectors:
        raw = collector.options.get("path")
        if not isinstance(raw, str) or not raw:
            continue
        key = f"{collector.path or collector.name}.path"
        candidates = _candidates(raw, config.source, collector.type)
        for candidate in candidates:
            if candidate.exists():
                _check_readable(candidate, key)
                break
        else:
            if not _follows(collector.type, collector.options):
                raise StartupError(
                    f"{key}: cannot read {candidates[0]}: no such file; this {collector.type} source reads "
                    f"its file once, so it must be there at start: create it or point {key} elsewhere"
                    + (
                        " (with follow = true it waits for the file to appear)"
                        if collector.type == "jsonl"
                        else ""
                    )
                )


def _follows(type_name: str, options: Mapping[str, Any]) -> bool:
    """Whether a collector of this type follows its file as it grows (and waits for it to appear)."""
    return type_name == "queue_log" or (type_name == "jsonl" and options.get("follow") is True)


def _candidates(raw: str, config_source: str, type_name: str) -> list[Path]:
    """Where the collector looks for ``raw``, in its order; the first is the one to name when none exists."""
    if type_name == "jsonl":  # a relative path is taken from the config's folder only, never expanded
        given = Path(raw)
        here = given.is_absolute() or config_source in ("", "<memory>")
        return [given if here else Path(config_source).parent / given]
    path = Path(raw).expanduser()
    if path.is_absolute() or not config_source or config_source.startswith("<"):
        return [path]
    folder = Path(config_source).parent
    # queue_log and records: as given, else from the config's folder or the one above it
    return [path, folder / path, folder.parent / path]


def _check_readable(path: Path, key: str) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise StartupError(
            f"{key}: cannot read {path}: {why}; make it readable by this user or point {key} elsewhere"
        ) from None


SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""


def check_database(path: str, setting: str) -> None:
    """Check that the history database at ``path`` can be written (creating an empty file).

    Args:
        path: the database file.
        setting: where the path came from, named in the fix (``--db FILE``, ``[store] path``).

    Raises:
        StartupError: what cannot be written, why, and how to fix it.
    """
    if path == ":memory:" or path.startswith("file:"):
        return
    target = Path(path).expanduser()
    hint = f"check its permissions, or pick another file with {setting}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("ab"):  # SQLite would create it too; a new empty file is a new database
            pass
        with target.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise StartupError(f"{path}: cannot write the history database: {why}; {hint}") from None
    if head and head != SQLITE_HEADER:
        # Told now, before a port is bound or a source locked, not after the start has begun.
        raise StartupError(
            f"{path}: cannot open the history database: file is not a database; "
            f"pick another file with {setting}"
        )
    folder = target.parent
    if not os.access(folder, os.W_OK | os.X_OK):  # the journal (WAL) files go beside the database
        raise StartupError(
            f"{path}: cannot write the history database's journal in {folder}: permission denied; {hint}"
        )
