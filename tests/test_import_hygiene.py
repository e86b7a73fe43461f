"""The core runs without the TUI: no headless module imports textual."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

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


LATER = (
    "cxmon.config",
    "cxmon.importer",
    "cxmon.engine",
    "cxmon.store",
    "cxmon.hub.client",
    "websockets",
    "aiosqlite",
    "phonenumbers",
    "apsw",
)
"""What a command imports when it runs, not when the command line is built."""


def _imported_by(code: str) -> list[str]:
    program = f"import sys\n{code}\nprint(' '.join(m for m in {LATER!r} if m in sys.modules))"
    res = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    return res.stdout.split()


def test_the_command_line_is_built_without_the_engine_or_the_hub() -> None:
    """Building the command line (every cxmon command does, ``--help`` and ``check`` too) imports
    neither the config, the importer, the engine, the store, the hub's client nor their libraries:
    each command imports what it runs."""
    assert _imported_by("import cxmon.cli; cxmon.cli.build_parser()") == []


def test_the_command_line_check_can_fail() -> None:
    """The check above can fail: running an import does pull those in."""
    assert {"cxmon.config", "cxmon.importer"} <= set(_imported_by("import cxmon.importer"))


def test_only_the_writer_process_loads_apsw() -> None:
    """An import's engine starts the store and its writer process without loading apsw, which only
    the writer process itself uses."""
    assert "apsw" not in _imported_by("import cxmon.importer, cxmon.store, cxmon.store_writer")


def test_the_writer_process_check_can_fail(tmp_path: Path) -> None:
    """The check above can fail: opening the writer's connection loads apsw."""
    assert "apsw" in _imported_by(f"import cxmon.store_writer as w\nw.connect({str(tmp_path / 'w.db')!r})")


def test_the_phone_number_library_is_loaded_when_a_number_needs_it() -> None:
    """The default config, the importer, the engine and the queue_log parser load without
    phonenumbers, and bare digits are normalized without it; a national number placed in the
    configured region loads it."""
    without = (
        "import cxmon.config, cxmon.importer, cxmon.engine, collectors.queue_log.parser\n"
        "from cxmon.customers import normalize_phone\n"
        "cxmon.config.load(cxmon.config.default_config_path())\n"
        "assert normalize_phone('4155550100') == '4155550100'"
    )
    assert "phonenumbers" not in _imported_by(without)
    placed = (
        "from cxmon.customers import normalize_phone\n"
        "assert normalize_phone('020 7183 8750', 'GB') == '+442071838750'"
    )
    assert "phonenumbers" in _imported_by(placed)


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


def module_imports(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module → the project modules it imports when it is loaded (module level, not under
    ``TYPE_CHECKING``; imports inside functions run later and cannot make a cycle at load)."""
    files = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            files[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            graph[name] |= {t for t in targets if t in files and t != name}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a loop (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                cycles.append(sorted([v, *group]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_no_modules_import_each_other() -> None:
    """No module of cxmon or collectors imports, at load, a module that imports it back (the config
    and the sources included): each part can be loaded and understood on its own."""
    assert import_cycles(module_imports(REPO, ("cxmon", "collectors"))) == []


def test_the_cycle_check_finds_a_cycle(tmp_path: Path) -> None:
    """The check above can fail: two modules importing each other, through a third, are found."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "config.py").write_text("from pkg.registry import create\n")
    (pkg / "registry.py").write_text("import pkg.source\n")
    (pkg / "source.py").write_text("from pkg import config\n")
    (pkg / "alone.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.config\n"
    )
    assert import_cycles(module_imports(tmp_path, ("pkg",))) == [["pkg.config", "pkg.registry", "pkg.source"]]
