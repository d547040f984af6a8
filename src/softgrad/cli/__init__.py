"""The ``softgrad`` command line: thin commands that parse, delegate and print.

Each command lives in its own module and is imported only when it runs, so
``softgrad --help`` starts fast. Exit codes: 0 success, 1 runtime error,
2 usage error; user mistakes get a one-line message, never a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

# command name -> "module:attribute" (imported on first use)
_COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("softgrad.cli.bench", "bench"),
    "derive": ("softgrad.cli.derive", "derive"),
    "train": ("softgrad.cli.train", "train"),
    "predict": ("softgrad.cli.predict", "predict"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS:
            module, attr = _COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="softgrad")
def cli() -> None:
    """softgrad: the softmax unit and its derivatives — exact, fast, explained."""


def main(argv: list[str] | None = None) -> Any:
    """Entry point of the ``softgrad`` script and ``python -m softgrad``."""
    return cli.main(args=argv, prog_name="softgrad")
