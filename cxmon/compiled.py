"""The compiled core: the modules mypyc compiles, which build is loaded, and the switch to pure Python.

``setup.py`` compiles :data:`MODULES` into one mypyc group (its shared library is
``cxmon/core__mypyc``) and writes :data:`MANIFEST` beside it: the build's outcome and a digest of
each module's source as it was compiled. A compiled module's ``.so`` sits beside its ``.py`` and
shadows it, so a source edited after the build would not run: :func:`stale` names such modules and
:func:`describe` says so (``cxmon --version``). With ``CXMON_PURE=1`` in the environment the build
compiles nothing, and at run time :func:`install_switch` makes every module of :data:`MODULES` load
from its source even where a compiled one exists.

This module is imported by ``setup.py`` and run by the Makefile before cxmon is installed, so it
imports nothing but the standard library.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

MODULES: tuple[str, ...] = (
    "cxmon.windows",
    "cxmon.sketch",
    "cxmon.rows",
    "cxmon.measures",
    "cxmon.detector",
    "cxmon.rule_state",
    "cxmon.noise",
    "cxmon.trend",
    "cxmon.units",
    "cxmon.reason_text",
    "cxmon.engine.tick",
    "cxmon.engine.window_figures",
    "cxmon.engine.minute_rows",
    "cxmon.engine.clock",
    "cxmon.engine.health",
    "cxmon.engine.forecast_sampling",
    "cxmon.engine.assembly",
    "cxmon.forecast.gamma",
    "cxmon.forecast.erlang_a",
    "cxmon.forecast.erlang_c",
    "cxmon.forecast.live",
    "cxmon.forecast.change",
    "cxmon.forecast.staffing",
    "cxmon.forecast.baseline",
    "cxmon.forecast.threshold_agents",
    "collectors.queue_log.parser",
    "collectors.queue_log.lines",
    "collectors.queue_log.verbs",
)
"""The modules compiled with mypyc: where an import spends its CPU (the engine's tick path, the
windows, the detector and forecasts, the queue_log parser). Not here: cxmon/engine/publish.py
(async generators), cxmon/forecast/breach.py (a ``__getattr__`` defined under ``if not
TYPE_CHECKING``) and cxmon/forecast/transient.py (``continue`` inside ``with``), which mypyc refuses,
and the modules that are not hot. Nor the modules of the dataclasses a Snapshot carries
(cxmon/forecast/{result,figures,usual}.py among them): the hub's codec reads their fields' types from
their annotations, which mypyc erases to ``type`` in a compiled dataclass."""

GROUP = "cxmon.core"
"""The mypyc group: its shared library is the extension module ``cxmon.core__mypyc``."""

PURE_ENV = "CXMON_PURE"
"""Set to 1 at build time to compile nothing, at run time to load every module from its source."""

MANIFEST = "compiled.json"
"""The build's record, written beside this file: ``{"build": ..., "why": ..., "modules": {...}}``."""

_ROOT = Path(__file__).resolve().parent.parent


def source_path(module: str, root: Path = _ROOT) -> Path:
    """The ``.py`` file of ``module`` under ``root`` (the directory that holds cxmon/ and collectors/)."""
    return root.joinpath(*module.split(".")).with_suffix(".py")


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pure_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``CXMON_PURE`` asks for pure Python (any value but empty or 0)."""
    return environ.get(PURE_ENV, "") not in ("", "0")


class _SourcesOnly:
    """A meta path finder that finds each module of :data:`MODULES` as its ``.py``, never its ``.so``."""

    def __init__(self, modules: Sequence[str]) -> None:
        self._modules = frozenset(modules)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """The source spec of a compiled module; None (ask the next finder) for any other."""
        if fullname not in self._modules or path is None:
            return None
        loader = (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)
        for entry in path:
            spec = importlib.machinery.FileFinder(entry, loader).find_spec(fullname)
            if spec is not None:
                return spec
        return None


def install_switch(environ: Mapping[str, str] = os.environ) -> bool:
    """With ``CXMON_PURE`` set, make the modules of :data:`MODULES` load from their sources.

    Called when the ``cxmon`` package is imported, before any of them is.

    Returns:
        Whether the switch is on.
    """
    if not pure_requested(environ):
        return False
    if not any(isinstance(f, _SourcesOnly) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourcesOnly(MODULES))
    return True


def is_compiled(module: str) -> bool:
    """Whether ``module`` loads (or was loaded) from an extension module, without importing it."""
    loaded = sys.modules.get(module)
    origin = getattr(loaded, "__file__", None) if loaded is not None else None
    if origin is None:
        spec = importlib.util.find_spec(module)
        origin = spec.origin if spec is not None else None
    return origin is not None and origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def built_modules(root: Path = _ROOT) -> list[str]:
    """The modules of :data:`MODULES` with an extension file beside their source (without importing)."""
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return [m for m in MODULES if any(source_path(m, root).with_suffix(s).exists() for s in suffixes)]


def compiled_modules() -> list[str]:
    """The modules of :data:`MODULES` that load compiled in this interpreter."""
    return [m for m in MODULES if is_compiled(m)]


def read_manifest(root: Path = _ROOT) -> dict[str, object]:
    """The build's record (an empty dict when none was written: a build older than the record)."""
    try:
        loaded = json.loads((root / "cxmon" / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def stale(modules: Sequence[str], root: Path = _ROOT) -> list[str]:
    """The compiled ``modules`` whose source changed since the build (or that the build did not record).

    Args:
        modules: modules that load compiled.
        root: the directory holding cxmon/ and collectors/ (sources and the manifest).

    Returns:
        Those whose running code is not their source's: rebuild (``make install``) or set CXMON_PURE=1.
    """
    recorded = read_manifest(root).get("modules")
    digests = recorded if isinstance(recorded, dict) else {}
    return [m for m in modules if digests.get(m) != digest(source_path(m, root))]


def describe() -> str:
    """The build in one line, as ``cxmon --version`` prints it after the version."""
    if pure_requested():
        return f"pure Python ({PURE_ENV}=1)"
    compiled = compiled_modules()
    if not compiled:
        why = read_manifest().get("why")
        return f"pure Python ({why})" if why else "pure Python"
    whole = "" if len(compiled) == len(MODULES) else f" of {len(MODULES)}"
    text = f"compiled with mypyc ({len(compiled)}{whole} modules)"
    old = stale(compiled)
    if old:
        text += f"; STALE, edited since the build: {', '.join(old)} (rebuild: make install)"
    return text


if __name__ == "__main__":
    # The Makefile's list of the compiled sources, which its install stamp depends on.
    print(" ".join(str(source_path(m).relative_to(_ROOT)) for m in MODULES))
