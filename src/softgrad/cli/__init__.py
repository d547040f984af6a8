"""The ``softgrad`` command line: thin commands that parse, delegate and print.

Each command lives in its own module and is imported only when it runs, so
``softgrad --help`` starts fast; what the commands do lives in
:mod:`softgrad.app` (training runs, CSV data, plots) and the library. Exit
codes: 0 success, 1 runtime error, 2 usage error; every failure is one line
``error: ...`` on standard error, never a traceback. The command line needs
the ``cli`` extra (``pip install 'softgrad[cli]'``); without it ``softgrad``
says so instead of failing inside an import.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from softgrad._lib._extras import MissingExtraError, require

if TYPE_CHECKING:
    import click

__all__ = ["cli", "main"]


def _check_installed() -> None:
    for module in ("click", "rich"):
        require(module, "cli", feature="the softgrad command line")


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``softgrad`` script and ``python -m softgrad``."""
    try:
        _check_installed()
    except MissingExtraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    from softgrad.cli._group import run

    return run(argv)


def __getattr__(name: str) -> Any:
    # the click group, for tests and embedding (click.testing.CliRunner().invoke(cli, ...))
    if name == "cli":
        _check_installed()
        from softgrad.cli._group import cli

        group: click.Group = cli
        return group
    msg = f"module 'softgrad.cli' has no attribute {name!r}"
    raise AttributeError(msg)
