"""``softgrad bench``: run a benchmark suite and print its table and summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from softgrad.bench import _suites
from softgrad.cli._options import count_option, inverse_regularisation_option, output_file_option

_OPS = ("softmax", "log_softmax", "softmax_vjp", "cross_entropy")


class _SuiteType(click.ParamType):  # type: ignore[type-arg]
    """A registered suite name; an unknown or uninstalled one is a usage error naming the choices."""

    name = "suite"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        names = _suites.available()
        if value not in names:
            why = "is not installed" if value in _suites.SUITES else "is not a suite"
            self.fail(f"{value!r} {why}; choose one of: {', '.join(names)}", param, ctx)
        return str(value)


def _suite_list() -> str:
    return "\n".join(f"  {name:<19}{_suites.SUITES[name].summary}" for name in _suites.available())


class _BenchCommand(click.Command):
    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_paragraph()
        formatter.write("Suites:\n" + _suite_list() + "\n")
        super().format_epilog(ctx, formatter)


@click.command(cls=_BenchCommand, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("suite", type=_SuiteType(), default="ops")
@click.argument("suite_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- SUITE_ARGS]...")
@click.option("--quick", is_flag=True, help="Small shapes / data, one try each: about a minute.")
@output_file_option("--json", "json_path", help="Also write the results as JSON to this file.")
@click.option(
    "--op", multiple=True, type=click.Choice(_OPS), help="ops: only this operation (repeatable)."
)
@click.option(
    "--dtype",
    multiple=True,
    type=click.Choice(["float32", "float64"]),
    help="ops: only this dtype (repeatable).",
)
@click.option(
    "--impl",
    multiple=True,
    help="ops: only this implementation (repeatable); torch is always timed, the ratios need it.",
)
@click.option("--thresholds", is_flag=True, help="ops: then also run the thresholds suite.")
@click.option("--first-call", is_flag=True, help="ops: then also run the first_call suite.")
@count_option("--reps", default=3, help="classifier: timed fits per model.")
@inverse_regularisation_option("c", help="classifier: inverse regularisation strength.")
def bench(suite: str, suite_args: tuple[str, ...], json_path: Path | None, **options: Any) -> None:
    """Run the benchmark SUITE (default: ops) and print its figures.

    The ops suite measures copy bandwidth, then each operation × shape × dtype ×
    library, and ends with a one-screen summary: softgrad against the fastest
    peer per row, and whether each goal (× torch) is met. Timings depend on
    the machine's load: the "other cores" column says how clean each was.
    Arguments after ``--`` go to an added suite's ``main(argv)``.

    \b
    Examples:
        $ softgrad bench --quick --json bench.json
        $ softgrad bench ops --op softmax --dtype float32 --impl softgrad
        $ softgrad bench classifier --quick
        $ softgrad bench accuracy
    """
    spec = _suites.SUITES[suite]
    ctx = click.get_current_context()
    given = [
        name
        for name, value in options.items()
        if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        and value not in (False, ())
    ]
    wrong = [name for name in given if name not in spec.options]
    if wrong:
        flags = ", ".join("--" + ("C" if n == "c" else n.replace("_", "-")) for n in wrong)
        takes = ", ".join("--" + ("C" if n == "c" else n.replace("_", "-")) for n in spec.options)
        msg = f"{flags} does not apply to the {suite} suite, which takes {takes}"
        raise click.UsageError(msg)
    if spec.builtin:
        if suite_args:
            msg = f"the {suite} suite takes no extra arguments, got {' '.join(suite_args)}"
            raise click.UsageError(msg)
        results = _run_builtin(suite, options)
    else:
        argv = [
            *(["--quick"] if options["quick"] else []),
            *(["--json", str(json_path)] if json_path else []),
            *suite_args,
        ]
        status = _suites.load(suite).main(argv)
        ctx.exit(status)
    if json_path:
        try:
            with open(json_path, "w") as f:
                json.dump(results, f, indent=1)
        except OSError as exc:
            msg = f"cannot write --json {json_path}: {exc.strerror}; choose a writable path"
            raise click.ClickException(msg) from None


def _run_builtin(suite: str, o: dict[str, Any]) -> Any:
    """Call the built-in suite's ``run`` with the options it takes."""
    out = click.echo
    module = _suites.load(suite)
    if suite == "ops":
        results: dict[str, Any] = module.run(
            quick=o["quick"],
            ops=list(o["op"]) or None,
            dtypes=tuple(o["dtype"]) or ("float32", "float64"),
            impls=list(o["impl"]) or None,
            out=out,
        )
        if o["thresholds"]:
            results["thresholds"] = _suites.load("thresholds").run(out=out)
        if o["first_call"]:
            results["first_call"] = _suites.load("first_call").run(out=out)
        return results
    if suite == "classifier":
        return module.run(quick=o["quick"], reps=o["reps"], C=o["c"], out=out)
    return module.run(out=out)
