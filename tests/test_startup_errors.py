"""Start-up failures through the real command line: a taken port, an unreadable file, a read-only folder.

Each must end the run with exit 2 and one line on stderr saying what, why and how to fix it.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO, skip_unless_ci


def cxmon(*args: str, drop_root: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cxmon ARGS`` from the repository (bounded in time); return the finished process.

    With ``drop_root`` a root test run loses the capabilities that let root read any file, so file
    permissions apply to it as to anyone else.
    """
    argv = [sys.executable, "-m", "cxmon", *args]
    if drop_root and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            skip_unless_ci("running as root without setpriv: file permissions cannot be made to apply")
        argv = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *argv]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=120)


def one_line(stderr: str) -> str:
    """The single line of ``stderr`` (fails when there are more, e.g. a traceback)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 another socket is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("verb", [["serve"], ["run", "--headless"]])
def test_taken_metrics_port_is_one_line_and_exit_2(verb: list[str], taken_port: int, tmp_path: Path) -> None:
    """`cxmon serve`/`run` on a port in use exit 2 with one line naming the address and both fixes."""
    address = f"127.0.0.1:{taken_port}"
    proc = cxmon(*verb, "--metrics-listen", address, "--db", str(tmp_path / "x.db"), "--duration", "1m")
    line = one_line(proc.stderr)
    assert proc.returncode == 2
    assert address in line and "already in use" in line
    assert "--metrics-listen" in line and "[prometheus] enabled = false" in line


def test_unreadable_collector_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A collector file that exists but cannot be read stops the start: exit 2, its key path and file."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"kind": "heartbeat", "ts": 1767600000, "source": "file"}\n')
    events.chmod(0)
    config = tmp_path / "cxmon.toml"
    config.write_text(
        '[http]\nlisten = "127.0.0.1:0"\n[journey]\nchannels = ["voice"]\n'
        '[[journey.steps]]\nname = "help"\nmatch = [{ channel = "*", queue = "*" }]\n'
        f'[[collectors]]\ntype = "jsonl"\nname = "file"\npath = "{events}"\n'
    )
    proc = cxmon("serve", "--config", str(config), "--db", str(tmp_path / "x.db"), drop_root=True)
    line = one_line(proc.stderr)
    assert proc.returncode == 2
    assert f"collectors[0].path: cannot read {events}: permission denied" in line


def test_unwritable_database_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A history database that cannot be written stops the start: exit 2, the file and --db named."""
    db = tmp_path / "locked.db"
    db.touch()
    db.chmod(0)
    proc = cxmon(
        "serve", "--metrics-listen", "127.0.0.1:0", "--db", str(db), "--duration", "1m", drop_root=True
    )
    line = one_line(proc.stderr)
    assert proc.returncode == 2
    assert f"{db}: cannot write the history database: permission denied" in line and "--db" in line


def test_a_database_that_is_not_sqlite_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    """`--db` naming a file that is not an SQLite database stops the start with exit 2 and one line
    naming it, before /metrics is served (no "serving /metrics" line first); the file is untouched."""
    db = tmp_path / "notes.txt"
    db.write_text("not a database\n")
    proc = cxmon("serve", "--metrics-listen", "127.0.0.1:0", "--db", str(db), "--duration", "1m")
    line = one_line(proc.stderr)
    assert proc.returncode == 2
    assert f"{db}: cannot open the history database: file is not a database" in line and "--db" in line
    assert db.read_text() == "not a database\n"


def test_database_in_a_read_only_folder_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A database to be created in a folder nobody may write to stops the start with one line, exit 2."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    proc = cxmon(
        "serve",
        "--metrics-listen",
        "127.0.0.1:0",
        "--db",
        str(folder / "x.db"),
        "--duration",
        "1m",
        drop_root=True,
    )
    line = one_line(proc.stderr)
    assert proc.returncode == 2
    assert "cannot write the history database" in line


def test_unreadable_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """A config file that cannot be read: exit 2 and one line naming it."""
    config = tmp_path / "cxmon.toml"
    config.write_text((REPO / "config" / "default.toml").read_text())
    config.chmod(0)
    proc = cxmon("serve", "--config", str(config), drop_root=True)
    line = one_line(proc.stderr)
    assert proc.returncode == 2
    assert str(config) in line and "ermission denied" in line


def test_taken_hub_port_is_one_error_line_and_exit_2(taken_port: int, tmp_path: Path) -> None:
    """`cxmon serve` with its hub port taken: exit 2, one error line naming [hub] listen, no traceback."""
    config = (REPO / "config" / "default.toml").read_text()
    hub = re.sub(r'(\[hub\]\nlisten = )"[^"]*"', lambda m: f'{m.group(1)}"127.0.0.1:{taken_port}"', config)
    assert hub != config
    (tmp_path / "cxmon.toml").write_text(hub)
    proc = cxmon(
        "serve", "--config", str(tmp_path / "cxmon.toml"), "--metrics-listen", "127.0.0.1:0",
        "--db", str(tmp_path / "x.db"), "--duration", "1m",
    )  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("cxmon:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(errors) == 1, proc.stderr
    assert f"127.0.0.1:{taken_port} for the hub" in errors[0] and "[hub] enabled = false" in errors[0]


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("jsonl", ""), ("jsonl", "follow = false\n"), ("records", 'preset = "anonymous-bank"\n')],
)
def test_missing_file_read_once_is_one_line_and_exit_2(kind: str, extra: str, tmp_path: Path) -> None:
    """A missing file that a source reads once (records, jsonl without follow) stops the start: exit 2,
    its key path and file, rather than a run that ends without having read it."""
    missing = tmp_path / "absent"
    config = tmp_path / "cxmon.toml"
    config.write_text(
        '[http]\nlisten = "127.0.0.1:0"\n[journey]\nchannels = ["voice"]\n'
        '[[journey.steps]]\nname = "help"\nmatch = [{ channel = "*", queue = "*" }]\n'
        f'[[collectors]]\ntype = "{kind}"\nname = "file"\npath = "{missing}"\n{extra}'
    )
    proc = cxmon(
        "run", "--headless", "--config", str(config), "--db", str(tmp_path / "x.db"), "--duration", "5s"
    )
    line = one_line(proc.stderr)
    assert proc.returncode == 2
    assert f"collectors[0].path: cannot read {missing}: no such file" in line


def test_missing_file_followed_is_waited_for(tmp_path: Path) -> None:
    """A jsonl source with follow = true waits for a missing file: the start goes on."""
    config = tmp_path / "cxmon.toml"
    config.write_text(
        '[http]\nlisten = "127.0.0.1:0"\n[hub]\nlisten = "127.0.0.1:0"\n[journey]\nchannels = ["voice"]\n'
        '[[journey.steps]]\nname = "help"\nmatch = [{ channel = "*", queue = "*" }]\n'
        f'[[collectors]]\ntype = "jsonl"\nname = "file"\npath = "{tmp_path / "later"}"\nfollow = true\n'
    )
    proc = cxmon(
        "run", "--headless", "--config", str(config), "--db", str(tmp_path / "x.db"), "--duration", "2s"
    )
    assert proc.returncode == 0, proc.stderr
    assert "waiting for it" in proc.stderr
