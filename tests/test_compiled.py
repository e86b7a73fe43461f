"""The compiled core: the build is named, runs its sources as they are now, falls back to pure Python.

The suite runs on whichever build is installed (its header names it); the pure-Python path of the
modules mypyc compiles stays tested by the last test here, which runs the equivalence and property
tests again in a second interpreter with ``CXMON_PURE=1``.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cxmon import compiled
from tests.helpers import REPO

PURE_AGAIN = (
    "tests/test_tick_equivalence.py",
    "tests/test_windows.py",
    "tests/test_sketch.py",
    "tests/test_tick_work.py",
    "tests/test_rows.py",
)
"""The equivalence (every tick against the full recomputation), brute-force and sketch tests, and
the files of the tests marked ``pure_python`` (deselected on a compiled build)."""


def _python(code: str, *, pure: bool, cwd: Path = REPO, **env: str) -> str:
    """Run ``code`` in a second interpreter (with or without ``CXMON_PURE=1``); return its stdout."""
    environ = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV} | env
    if pure:
        environ[compiled.PURE_ENV] = "1"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=environ, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


_ORIGINS = (
    "import importlib, json, sys; from cxmon import compiled\n"
    "for m in compiled.MODULES: importlib.import_module(m)\n"
    "print(json.dumps({m: sys.modules[m].__file__ for m in compiled.MODULES}))"
)


def test_version_names_the_build_this_interpreter_loads() -> None:
    """``cxmon --version`` says "compiled with mypyc (N modules)" when N load compiled, else pure Python."""
    done = subprocess.run(
        [sys.executable, "-m", "cxmon", "--version"], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = compiled.compiled_modules()
    if loaded:
        assert f"compiled with mypyc ({len(loaded)}" in done.stdout
    else:
        assert "pure Python" in done.stdout
    assert done.stdout.startswith("cxmon ")


def test_no_compiled_module_is_older_than_its_source() -> None:
    """Every module with a compiled build beside it was compiled from its source as it is now.

    (Else the session ran the sources, as its header says, and ``make install`` compiles again.)
    """
    assert compiled.stale(compiled.built_modules()) == []


def test_the_build_did_not_fall_back_because_mypyc_refused_the_sources() -> None:
    """A compiled module's source that mypyc cannot compile fails here, not silently as a pure build.

    (A pure build for want of a compiler, or asked for with CXMON_PURE=1, is not a failure.)
    """
    why = str(compiled.read_manifest().get("why", ""))
    assert not why.startswith("mypyc refused"), (
        f"{why}\nMake the code one mypyc compiles, or take its module out of MODULES in"
        " cxmon/compiled.py (it then runs as Python), and `make install`."
    )


def test_a_source_edited_after_the_build_is_named_stale(tmp_path: Path) -> None:
    """The check above can fail: a module whose source changed since the recorded build is reported."""
    for module in ("cxmon.units", "cxmon.sketch"):
        target = compiled.source_path(module, tmp_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(compiled.source_path(module), target)
    record = {m: compiled.digest(compiled.source_path(m, tmp_path)) for m in ("cxmon.units", "cxmon.sketch")}
    (tmp_path / "cxmon" / compiled.MANIFEST).write_text(json.dumps({"build": "mypyc", "modules": record}))
    assert compiled.stale(["cxmon.units", "cxmon.sketch"], tmp_path) == []

    edited = compiled.source_path("cxmon.units", tmp_path)
    edited.write_text(edited.read_text() + "\n# edited\n")
    assert compiled.stale(["cxmon.units", "cxmon.sketch"], tmp_path) == ["cxmon.units"]


def test_the_pure_switch_loads_every_compiled_module_from_its_source() -> None:
    """With CXMON_PURE=1 each module mypyc compiles loads from its .py, even where its .so exists."""
    origins = json.loads(_python(_ORIGINS, pure=True))
    assert sorted(origins) == sorted(compiled.MODULES)
    assert {m: Path(f).suffix for m, f in origins.items()} == dict.fromkeys(compiled.MODULES, ".py")


def test_without_the_switch_each_module_loads_as_the_build_was_made() -> None:
    """Without the switch every module of the list loads from its extension where the build compiled
    it (its record names mypyc), and from its source where the build was pure Python."""
    built = str(compiled.read_manifest().get("build", "pure"))
    want = ".so" if built.startswith("mypyc") else ".py"
    origins = json.loads(_python(_ORIGINS, pure=False))
    assert [m for m, f in origins.items() if Path(f).suffix != want] == []


def test_the_equivalence_and_property_tests_pass_on_pure_python() -> None:
    """The tick-equivalence, windows brute-force, sketch and ``pure_python`` tests pass with CXMON_PURE=1."""
    environ = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV} | {compiled.PURE_ENV: "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PURE_AGAIN],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert f"cxmon build: pure Python ({compiled.PURE_ENV}=1)" in done.stdout
    assert " passed" in done.stdout.splitlines()[-1]


_WHERE_AND_BUILD = (
    "import cxmon.units as u; from cxmon import compiled; print(u.__file__); print(compiled.describe())"
)


def _repo_copy(tmp_path: Path, modules: tuple[str, ...]) -> Path:
    """A copy of the package's sources whose compiled list is only ``modules`` (a quick build)."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, root / name)
    for package in ("cxmon", "collectors"):
        shutil.copytree(
            REPO / package, root / package, ignore=shutil.ignore_patterns("*.so", "__pycache__", "*.json")
        )
    listing = root / "cxmon" / "compiled.py"
    text = listing.read_text()
    start = text.index("MODULES: tuple[str, ...] = (")
    end = text.index(")\n", start) + 2
    listing.write_text(text[:start] + f"MODULES: tuple[str, ...] = {modules!r}\n" + text[end:])
    return root


def _build_inplace(root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV} | env
    return subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("cc") is None, reason="no C compiler")
def test_setup_compiles_the_listed_modules_and_records_their_sources(tmp_path: Path) -> None:
    """``setup.py build_ext`` compiles the listed module, records its digest, and it loads compiled.

    An extension an earlier build left for a module no longer listed is removed (it would shadow
    its source and ask for a shared library that no longer has it).
    """
    root = _repo_copy(tmp_path, ("cxmon.units",))
    left = root / "cxmon" / f"sketch{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    left.write_bytes(b"an old build")
    done = _build_inplace(root)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not left.exists()
    record = json.loads((root / "cxmon" / compiled.MANIFEST).read_text())
    assert record["build"].startswith("mypyc ")
    assert record["modules"] == {"cxmon.units": compiled.digest(root / "cxmon" / "units.py")}
    code = _WHERE_AND_BUILD
    where, build = _python(code, pure=False, cwd=root, PYTHONPATH=str(root)).splitlines()
    assert where.startswith(str(root / "cxmon" / "units.")) and where.endswith(".so")
    assert build == "compiled with mypyc (1 modules)"


def test_a_failing_compiler_leaves_a_pure_install_that_says_why(tmp_path: Path) -> None:
    """With the C compiler failing, the build succeeds as pure Python and ``--version`` says why."""
    root = _repo_copy(tmp_path, ("cxmon.units",))
    done = _build_inplace(root, CC="false")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cxmon: installing pure Python: compiling failed" in done.stderr
    assert not list((root / "cxmon").glob("*.so"))
    code = _WHERE_AND_BUILD
    where, build = _python(code, pure=False, cwd=root, PYTHONPATH=str(root)).splitlines()
    assert where == str(root / "cxmon" / "units.py")
    assert build.startswith("pure Python (compiling failed")


def test_a_module_mypyc_refuses_leaves_a_pure_install_that_names_the_error(tmp_path: Path) -> None:
    """A listed module mypyc cannot compile gives a pure build whose record quotes mypyc's error."""
    root = _repo_copy(tmp_path, ("cxmon.refused",))
    (root / "cxmon" / "refused.py").write_text(
        '"""An async generator, which mypyc does not compile."""\n\n'
        "from __future__ import annotations\n\nfrom collections.abc import AsyncIterator\n\n\n"
        "async def ticks() -> AsyncIterator[int]:\n    yield 1\n"
    )
    done = _build_inplace(root)
    assert done.returncode == 0, done.stderr[-3000:]
    why = json.loads((root / "cxmon" / compiled.MANIFEST).read_text())["why"]
    assert why.startswith("mypyc refused the sources: cxmon/refused.py:")
    assert "async generators are unimplemented" in why
    assert not list((root / "cxmon").glob("*.so"))


def test_no_dataclass_a_snapshot_carries_is_compiled() -> None:
    """The hub's codec reads a Snapshot's dataclasses' field types, which mypyc erases: none compiled."""
    import dataclasses
    import typing

    from cxmon.hub.codec import _hints
    from cxmon.snapshot import Snapshot

    seen: set[type] = set()

    def walk(tp: object) -> None:
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            if tp not in seen:
                seen.add(tp)
                for hint in _hints(tp).values():
                    walk(hint)
            return
        for arg in typing.get_args(tp):
            walk(arg)

    walk(Snapshot)
    assert len(seen) > 10
    assert sorted(f"{t.__module__}.{t.__name__}" for t in seen if t.__module__ in compiled.MODULES) == []


def test_every_file_with_a_pure_python_test_is_run_again_on_pure_python() -> None:
    """A test marked ``pure_python`` (deselected on a compiled build) is in a file the pure run covers."""
    marked = sorted(
        str(p.relative_to(REPO))
        for p in (REPO / "tests").rglob("test_*.py")
        if p.name != Path(__file__).name and "@pytest.mark.pure_python" in p.read_text()
    )
    assert marked and set(marked) <= set(PURE_AGAIN)


def test_a_pure_editable_build_clears_the_compiled_modules_and_records_why(tmp_path: Path) -> None:
    """``CXMON_PURE=1`` through the editable-install hook (what ``pip install -e`` calls) removes the
    compiled modules an earlier build left beside the sources and records the pure build.

    (The build runs build_ext only while there are extensions to build, unless told otherwise; a
    pure editable install then left the last compiled modules in place, shadowing the sources.)
    """
    root = _repo_copy(tmp_path, ("cxmon.units",))
    left = root / "cxmon" / f"units{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    left.write_bytes(b"an old build")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    code = f"from setuptools import build_meta; print(build_meta.build_editable({str(wheels)!r}))"
    _python(code, pure=True, cwd=root)
    assert not left.exists()
    record = json.loads((root / "cxmon" / compiled.MANIFEST).read_text())
    assert record == {"build": "pure", "why": f"built with {compiled.PURE_ENV}=1"}
