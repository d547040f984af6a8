"""Options that several ``softgrad`` commands share, declared once.

Each function returns a ``click.option`` decorator: the same flag means the
same type, range and default in every command that takes it, and its help
line is the only thing a command words for itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["count_option", "inverse_regularisation_option", "output_file_option"]

_F = TypeVar("_F", bound=Callable[..., Any])


def count_option(*decls: str, default: int, help: str) -> Callable[[_F], _F]:
    """A whole number ``>= 1`` (outputs, iterations, repetitions), default shown in ``--help``."""
    return click.option(
        *decls, type=click.IntRange(min=1), default=default, show_default=True, help=help
    )


def inverse_regularisation_option(
    dest: str = "C", help: str = "Inverse L2 regularisation strength."
) -> Callable[[_F], _F]:
    """``--C``: scikit-learn's inverse L2 regularisation strength, a float ``> 0``, default 1."""
    return click.option(
        "--C",
        dest,
        type=click.FloatRange(min=0, min_open=True),
        default=1.0,
        show_default=True,
        help=help,
    )


def output_file_option(*decls: str, help: str) -> Callable[[_F], _F]:
    """A file to write (a :class:`~pathlib.Path`; not a folder), none by default."""
    return click.option(
        *decls,
        type=click.Path(dir_okay=False, writable=True, path_type=Path),
        default=None,
        help=help,
    )
