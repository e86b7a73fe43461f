"""The package says what licence it is under, in the form current setuptools reads without a warning."""

from __future__ import annotations

import tomllib

from tests.helpers import REPO


def test_the_licence_is_an_spdx_string_backed_by_a_license_file() -> None:
    """pyproject declares ``license = "MIT"`` (not the deprecated table) and ships LICENSE, an MIT text."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert project["project"]["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the cxmon authors\n")
    assert "Permission is hereby granted, free of charge" in text


def test_the_build_backend_is_new_enough_for_spdx_licences() -> None:
    """SPDX strings and license-files need setuptools 77 or later (older ones reject or warn)."""
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]
    floor = next(r for r in build["requires"] if r.startswith("setuptools"))
    assert floor.startswith("setuptools>=")
    assert tuple(int(p) for p in floor.removeprefix("setuptools>=").split(".")) >= (77,)
