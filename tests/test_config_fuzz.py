"""`cxmon check` under a config fuzzer: swaps, deletions and wrong nesting over the default config."""

from __future__ import annotations

import copy
import datetime as dt
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cxmon.cli import main
from tests.helpers import REPO

DEFAULT = tomllib.loads((REPO / "config" / "default.toml").read_text(encoding="utf-8"))

Path_ = tuple[str | int, ...]

# a key path as the checker writes it: monitor.windows, journey.steps[2].thresholds[0].warn
KEY_PATH = re.compile(r"^[\w-]+(\[\d+\])*(\.[\w-]+(\[\d+\])*)*: \S")


def _paths(node: object, prefix: Path_ = ()) -> list[Path_]:
    out: list[Path_] = []
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((*prefix, key))
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((*prefix, i))
            out.extend(_paths(value, (*prefix, i)))
    return out


def _subtrees(node: object) -> list[object]:
    out: list[object] = [node]
    if isinstance(node, dict):
        for value in node.values():
            out.extend(_subtrees(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(_subtrees(value))
    return out


PATHS = _paths(DEFAULT)
# every value the default config holds somewhere: scalars, lists, tables, tables of tables
DEFAULT_VALUES = _subtrees(DEFAULT)[1:]

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["5m", "80%", "0s", "-1s", "1e400s", "99999999999999999999999h", "nan%", "*"]),
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    st.dates(),
    st.times(),
)
TOML_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
VALUES = st.one_of(TOML_VALUES, st.sampled_from(DEFAULT_VALUES))


def _parent(doc: Any, path: Path_) -> Any:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def _exists(doc: Any, path: Path_) -> bool:
    node = doc
    for key in path:
        in_table = isinstance(node, dict) and isinstance(key, str) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and key < len(node)
        if not (in_table or in_list):
            return False
        node = node[key]
    return True


@st.composite
def mutated(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    """The default config after one to three swaps, deletions, wrappings or moves."""
    doc = copy.deepcopy(DEFAULT)
    done: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        live = [p for p in PATHS if _exists(doc, p)]
        if not live:
            break
        path = draw(st.sampled_from(live))
        parent, key = _parent(doc, path), path[-1]
        op = draw(st.sampled_from(["swap", "delete", "wrap_list", "wrap_table", "move", "add_key"]))
        if op == "swap":
            parent[key] = copy.deepcopy(draw(VALUES))
        elif op == "delete":
            del parent[key]
        elif op == "wrap_list":
            parent[key] = [parent[key]]
        elif op == "wrap_table":
            parent[key] = {draw(KEYS): parent[key]}
        elif op == "move":
            # a subtree put somewhere else in the document: wrong nesting
            target = draw(st.sampled_from(live))
            node = _parent(doc, target)[target[-1]]
            if isinstance(node, dict) and not _is_prefix(path, target):
                node[str(key)] = copy.deepcopy(parent[key])
        else:
            node = parent[key]
            if isinstance(node, dict):
                node[draw(KEYS)] = copy.deepcopy(draw(VALUES))
        done.append(f"{op} {path}")
    return doc, done


def _is_prefix(a: Path_, b: Path_) -> bool:
    return b[: len(a)] == a


def _check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["check", str(path)])
    captured = capsys.readouterr()
    return code, captured.err.splitlines()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=mutated())
def test_check_never_raises_and_names_every_problem(
    case: tuple[dict[str, Any], list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Any swap, deletion or wrong nesting of the default config's keys: `cxmon check` exits 0 or 2
    (never a traceback), and every problem it lists starts with the key path it is about."""
    doc, _ = case
    path = tmp_path / "fuzzed.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    code, lines = _check(path, capsys)
    assert code in (0, 2)
    if code == 2:
        *problems, summary = lines
        assert summary == f"{path}: {len(problems)} problem(s)"
        assert problems
        for line in problems:
            assert KEY_PATH.match(line), line


# a table, or a list of tables, that the checker reads key by key
TABLE_PATHS = [p for p in PATHS if isinstance(_parent(DEFAULT, p)[p[-1]], dict)]
TABLE_LIST_PATHS = [
    p
    for p in PATHS
    if isinstance(v := _parent(DEFAULT, p)[p[-1]], list) and v and all(isinstance(x, dict) for x in v)
]


def _key_path(path: Path_) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else key)
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    where=st.sampled_from(TABLE_PATHS + TABLE_LIST_PATHS),
    value=st.one_of(SCALARS, st.lists(SCALARS, min_size=1, max_size=3)),
)
def test_scalar_where_a_table_belongs_is_reported_at_its_key(
    where: Path_, value: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scalar (or a list of scalars) where a table or a list of tables belongs is a problem (exit 2)
    named by that key's path."""
    doc = copy.deepcopy(DEFAULT)
    _parent(doc, where)[where[-1]] = value
    path = tmp_path / "nested.toml"
    path.write_text(tomli_w.dumps(doc), encoding="utf-8")
    code, lines = _check(path, capsys)
    assert code == 2
    key = _key_path(where)
    assert any(line.startswith(key) for line in lines[:-1]), (key, lines)


def test_scalar_thresholds_under_a_step_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    """`thresholds = 5` under a step: `cxmon check` (a real process) lists the key path and exits 2."""
    text = (REPO / "config" / "default.toml").read_text(encoding="utf-8")
    first = text.index("  [[journey.steps.thresholds]]")
    head, tail = text[:first], text[first:]
    # the first step's only threshold table becomes `thresholds = 5`
    end = tail.index("# ----", 1)
    path = tmp_path / "scalar.toml"
    path.write_text(head + "thresholds = 5\n\n" + tail[end:], encoding="utf-8")
    assert tomllib.loads(path.read_text(encoding="utf-8"))["journey"]["steps"][0]["thresholds"] == 5
    proc = subprocess.run(
        [sys.executable, "-m", "cxmon", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "journey.steps[0].thresholds: expected a list of tables, got 5" in proc.stderr.splitlines()


def _numeric_leaves() -> list[Path_]:
    out = []
    for p in PATHS:
        value = _parent(DEFAULT, p)[p[-1]]
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number or (isinstance(value, str) and re.fullmatch(r"[\d.]+(ms|s|m|h|d|%)", value)):
            out.append(p)
    return out


def test_non_finite_numbers_are_reported_at_every_numeric_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """nan, inf and -inf pass every comparison a converter makes: at each key of the default config
    that holds a number, a duration or a ratio, each of them is a problem named by that key."""
    leaves = _numeric_leaves()
    assert len(leaves) > 50
    missed = []
    for where in leaves:
        for bad in (float("nan"), float("inf"), float("-inf")):
            doc = copy.deepcopy(DEFAULT)
            _parent(doc, where)[where[-1]] = bad
            path = tmp_path / "finite.toml"
            path.write_text(tomli_w.dumps(doc), encoding="utf-8")
            code, lines = _check(path, capsys)
            # an item of a list of values is reported at the list's key
            key = re.sub(r"\[\d+\]$", "", _key_path(where))
            if code != 2 or not any(line.startswith(key + ":") for line in lines):
                missed.append((_key_path(where), bad, code))
    assert missed == []
