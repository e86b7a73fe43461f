"""A start of cxmon reads bytecode for its own pure-Python modules; it does not compile their source."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.helpers import REPO

_AUDIT = """
import sys

compiled = []


def hook(event, args):
    # importlib compiles a module's source (its bytecode missing or stale) through compile().
    if event == "compile" and isinstance(args[1], str) and args[1].endswith(".py"):
        compiled.append(args[1])


sys.addaudithook(hook)
import cxmon.cli, cxmon.importer, cxmon.engine.core, cxmon.store_writer, collectors.registry
import cxmon.tui.app, collectors.queue_log.source
root = sys.argv[1]
print("\\n".join(p for p in compiled if p.startswith(root)))
"""


def test_a_start_compiles_none_of_its_own_source() -> None:
    """Where the environment forbids writing bytecode (PYTHONDONTWRITEBYTECODE, as on some machines
    and CI runners), an import, the dashboard and the store's writer process still start from
    bytecode: ``make install``, ``make run`` and ``make test`` write it (``make bytecode``). Without
    it each of an import's three processes parses and compiles about 60 modules again, a tenth of a
    second apiece."""
    env = os.environ | {"PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _AUDIT, str(REPO)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    compiled = done.stdout.split()
    assert compiled == [], (
        f"{len(compiled)} modules compiled from source at start (stale or missing bytecode; "
        f"`make bytecode` writes it): {compiled[:5]}"
    )
