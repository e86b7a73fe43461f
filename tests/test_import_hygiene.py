"""The core runs without the TUI: no headless module imports textual."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import collectors
import cxmon
from tests.helpers import REPO


def headless_modules() -> list[str]:
    names = []
    for package in (cxmon, collectors):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not info.name.startswith("cxmon.tui") and info.name != "cxmon.__main__":
                names.append(info.name)
    return sorted(names)


def test_there_are_headless_modules_to_check() -> None:
    """The walk finds the engine and the collectors (so the check below is not vacuous)."""
    names = headless_modules()
    assert {"cxmon.engine", "cxmon.exporter", "cxmon.store", "collectors.simulator"} <= set(names)


@pytest.mark.parametrize("module", headless_modules())
def test_module_does_not_import_textual(module: str) -> None:
    """Importing a headless module leaves textual out of sys.modules."""
    code = f"import sys, {module}; sys.exit(1 if 'textual' in sys.modules else 0)"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"{module} pulls in textual\n{res.stderr}"


def test_the_dashboard_does_import_textual() -> None:
    """The check can fail: the TUI package itself does import textual."""
    code = "import sys, cxmon.tui.app; sys.exit(1 if 'textual' in sys.modules else 0)"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 1


def collector_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(collectors.__path__, "collectors."))


def test_sources_validate_without_the_config_module() -> None:
    """No import cycle between the config and the sources: cxmon.validation and every collectors
    module (the registry, the Source protocol, each source and its option parser) import without
    cxmon.config, which is the one that calls them."""
    modules = ["cxmon.validation", *collector_modules()]
    assert {"collectors.base", "collectors.registry", "collectors.queue_log.options"} <= set(modules)
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "    if 'cxmon.config' in sys.modules:\n"
        "        sys.exit(name)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, f"importing {res.stderr.strip()} pulls in cxmon.config"


def test_the_config_does_import_the_source_registry() -> None:
    """The check above can fail: cxmon.config itself imports the registry, in that direction only."""
    code = "import sys, cxmon.config; sys.exit(0 if 'collectors.registry' in sys.modules else 1)"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
