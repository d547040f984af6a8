"""Docstring parts that several public functions share, written once.

A docstring line that holds only ``{{name}}`` is replaced by the part ``name``,
indented like that line: each function's rendered docstring (``help()``, the
API pages, the doctests) stays complete, and a parameter explained for one
function reads the same everywhere it appears.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["fill_doc"]

_F = TypeVar("_F", bound=Callable[..., Any])


def fill_doc(**parts: str) -> Callable[[_F], _F]:
    """Decorator: put ``parts[name]`` where the docstring has a ``{{name}}`` line.

    Examples
    --------
    >>> @fill_doc(axis="axis : int\\n    The reduced axis.")
    ... def f(x, axis):
    ...     '''Sum.
    ...
    ...     Parameters
    ...     ----------
    ...     {{axis}}
    ...     '''
    >>> print(f.__doc__.splitlines()[4])
        axis : int
    """

    def fill(func: _F) -> _F:
        lines = []
        for line in (func.__doc__ or "").splitlines():
            name = line.strip()
            if name.startswith("{{") and name.endswith("}}"):
                indent = line[: len(line) - len(line.lstrip())]
                part = textwrap.dedent(parts[name[2:-2]]).strip("\n")
                lines.append(textwrap.indent(part, indent))
            else:
                lines.append(line)
        func.__doc__ = "\n".join(lines)
        return func

    return fill
