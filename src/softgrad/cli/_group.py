"""The ``softgrad`` command group: lazy commands, one error style, quiet pipes.

Every command reports a failure the same way, on one line of standard error:
``error: <what went wrong and how to fix it>`` (exit 1), or the usage line
followed by ``error: ...`` for a mistake on the command line (exit 2).
Warnings read ``warning: ...``. Writing to a full disk is an error like any
other; a reader that closes the pipe early (``softgrad predict ... | head``)
ends the command quietly with exit 0, as Unix tools do.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import click

from softgrad._lib._extras import MissingExtraError

__all__ = ["cli", "fail", "warn"]

# command name -> (module, attribute), imported on first use so `softgrad --help` starts fast
_COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("softgrad.cli.bench", "bench"),
    "derive": ("softgrad.cli.derive", "derive"),
    "train": ("softgrad.cli.train", "train"),
    "predict": ("softgrad.cli.predict", "predict"),
}


def fail(message: str) -> NoReturn:
    """Stop the command with ``error: message`` on standard error and exit status 1."""
    raise click.ClickException(message)


def warn(message: str) -> None:
    """Print ``warning: message`` on standard error."""
    click.echo(f"warning: {message}", err=True)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's last flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _show_usage_error(exc: click.UsageError) -> None:
    ctx = exc.ctx
    if ctx is not None:
        click.echo(ctx.get_usage(), err=True)
        if ctx.command.get_help_option(ctx) is not None:
            click.echo(f"Try '{ctx.command_path} --help' for help.", err=True)
        click.echo(err=True)
    click.echo(f"error: {exc.format_message()}", err=True)


@contextlib.contextmanager
def _reported() -> Iterator[None]:
    """Turn every expected failure into one line on standard error and an exit status."""
    try:
        yield
        sys.stdout.flush()  # a full disk or a closed pipe shows here, while it can be reported
    except click.exceptions.Exit:
        sys.stdout.flush()
        raise
    except click.UsageError as exc:
        _show_usage_error(exc)
        raise click.exceptions.Exit(exc.exit_code) from None
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        raise click.exceptions.Exit(exc.exit_code) from None
    except MissingExtraError as exc:
        click.echo(f"error: {exc}", err=True)
        raise click.exceptions.Exit(1) from None
    except OSError as exc:
        _silence_stdout()
        if exc.errno == errno.EPIPE:  # the reader has gone: nothing left to say, nothing wrong
            raise click.exceptions.Exit(0) from None
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        where = f" {exc.filename}" if exc.filename else " the output"
        with contextlib.suppress(OSError):
            click.echo(f"error: cannot write{where}: {reason}", err=True)
        raise click.exceptions.Exit(1) from None


def _first_sentence(text: str) -> str:
    """The command's summary: its docstring's first sentence, whole."""
    paragraph = " ".join(text.strip().split("\n\n", 1)[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _COMMANDS:
            module, attr = _COMMANDS[cmd_name]
            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            ctx.fail(
                f"no command {name!r}.{hint} The commands: {', '.join(self.list_commands(ctx))}"
            )
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click cuts each summary to the terminal's width mid-sentence ("… ×..."); wrap it instead
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                summary = command.short_help or _first_sentence(command.help or "")
                rows.append((name, summary))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _reported():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _reported():
            return super().invoke(ctx)


_EPILOG = """\b
Shell completion (bash; zsh and fish alike, with zsh_source or fish_source):
  eval "$(_SOFTGRAD_COMPLETE=bash_source softgrad)"    # add it to ~/.bashrc"""


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=_EPILOG,
)
@click.version_option(package_name="softgrad")
def cli() -> None:
    """softgrad: the softmax unit and its derivatives — exact, fast, explained."""


def run(argv: Sequence[str] | None = None) -> Any:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``)."""
    return cli.main(args=None if argv is None else list(argv), prog_name="softgrad")
