"""Build: the hot modules listed in cxmon/compiled.py compiled with mypyc, or pure Python when it cannot be.

Everything else about the package is in pyproject.toml. mypyc type-checks the modules with the
runtime dependencies importable, so the compiled build is made without build isolation in an
environment that has them and mypy (``make install`` does it). Without mypyc, with a compiler
missing or failing, or with ``CXMON_PURE=1``, cxmon installs as pure Python and records why in
cxmon/compiled.json, which ``cxmon --version`` reads.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import io
import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any, ClassVar

from setuptools import Extension, setup
from setuptools.command.build import build
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent
CORE = runpy.run_path(str(HERE / "cxmon" / "compiled.py"))
MODULES: tuple[str, ...] = CORE["MODULES"]
GROUP: str = CORE["GROUP"]
SHARED = GROUP + "__mypyc"


def _inplace_extensions() -> list[Path]:
    """Every extension file beside the sources: what earlier builds in place (editable installs) left.

    A module dropped from the list keeps its old ``.so`` otherwise, which would shadow its source and
    ask for a shared library that no longer has it.
    """
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return [
        p
        for package in ("cxmon", "collectors")
        for p in (HERE / package).rglob("*")
        if p.name.endswith(suffixes)
    ]


def _write_manifest(directory: Path, record: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CORE["MANIFEST"]).write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def _core_extensions() -> tuple[list[Extension], str | None]:
    """mypyc's extensions for the core, or none and why."""
    if CORE["pure_requested"](os.environ):
        return [], f"built with {CORE['PURE_ENV']}=1"
    try:
        from mypyc.build import mypycify
    except ImportError:
        return [], "mypyc was not importable when it was built"
    paths = [str(CORE["source_path"](m, HERE).relative_to(HERE)) for m in MODULES]
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            return list(mypycify(paths, opt_level="3", group_name=GROUP)), None
    except (Exception, SystemExit) as exc:  # mypyc prints what it refuses, then exits
        errors = [line for line in said.getvalue().splitlines() if ": error:" in line] or [repr(exc)]
        return [], f"mypyc refused the sources: {'; '.join(errors[:5])}"
    finally:
        sys.stderr.write(said.getvalue())


class BuildCore(build_ext):
    """build_ext that compiles the core when it can and otherwise leaves a working pure install."""

    _why_pure: str | None = None
    _digests: dict[str, str] | None = None

    def finalize_options(self) -> None:
        """Replace the placeholder extension with mypyc's (worked out only when something is built)."""
        self._digests = {m: CORE["digest"](CORE["source_path"](m, HERE)) for m in MODULES}
        extensions, self._why_pure = _core_extensions()
        self.distribution.ext_modules = extensions
        super().finalize_options()

    _in_source = False
    """Whether the extensions go beside the sources (``--inplace``, an editable install)."""

    def _manifest_dirs(self) -> list[Path]:
        dirs = [Path(self.build_lib) / "cxmon"]
        if self._in_source:
            dirs.append(HERE / "cxmon")
        return dirs

    def _fall_back(self, why: str) -> None:
        # Never leave a compiled module without its shared library, or one shadowing a newer source.
        for ext in self.extensions:
            Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
        if self._in_source:
            for path in _inplace_extensions():
                path.unlink()
        print(f"cxmon: installing pure Python: {why}", file=sys.stderr)
        for directory in self._manifest_dirs():
            _write_manifest(directory, {"build": "pure", "why": why})

    def run(self) -> None:
        """Compile, then record the build; on any failure, fall back to pure Python."""
        # build_ext.run clears inplace while it builds (and leaves it so when the build fails).
        self._in_source = bool(self.inplace or getattr(self, "editable_mode", False))
        if self._why_pure is not None:
            self._fall_back(self._why_pure)
            return
        if self._in_source:
            for path in _inplace_extensions():
                path.unlink()
        try:
            super().run()
        except Exception as exc:  # no compiler, no Python headers, a compiler error
            self._fall_back(f"compiling failed ({exc})")
            return
        from mypy.version import __version__ as mypy_version

        record = {"build": f"mypyc {mypy_version}", "modules": self._digests}
        for directory in self._manifest_dirs():
            _write_manifest(directory, record)


class BuildAlways(build):
    """build that runs build_ext even with no extension: a pure build records why and clears old ones."""

    sub_commands: ClassVar[list[tuple[str, Any]]] = [
        (name, (lambda _: True) if name == "build_ext" else test) for name, test in build.sub_commands
    ]


# A placeholder extension (the wheel is platform-specific); BuildCore puts mypyc's (or none) in its place.
setup(ext_modules=[Extension(SHARED, sources=[])], cmdclass={"build": BuildAlways, "build_ext": BuildCore})
