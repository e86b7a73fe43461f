"""Exceptions every part of cxmon raises: a message and where it happened."""

from __future__ import annotations


class CxmonError(Exception):
    """Base error: ``msg`` says why, ``where`` says where (``file:line`` or a key path)."""

    def __init__(self, msg: str, where: str | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.where = where

    def __str__(self) -> str:
        return f"{self.where}: {self.msg}" if self.where else self.msg


class ConfigError(CxmonError):
    """A configuration value or key is wrong."""

    def __init__(self, problems: list[str], where: str | None = None) -> None:
        super().__init__("; ".join(problems) if problems else "invalid configuration", where)
        self.problems = problems


class ParseError(CxmonError):
    """A source line or payload could not be turned into events."""


class StoreError(CxmonError):
    """The history database cannot be used."""


class StartupError(CxmonError):
    """Something the daemon needs at start-up cannot be had (a port, a file, a permission).

    The message is one line: what, why, and how to fix it.
    """
