"""``softgrad train``: train the post's network and show what it learned.

Example::

    $ softgrad train                      # iris: D=4 inputs, K=3 softmax outputs
    $ softgrad train --data digits --solver newton-cg --C 0.5
    $ softgrad train --data flowers.csv --target species --out runs/flowers
    $ softgrad train --data big.parquet --target label --scheduler tcp://10.0.0.5:8786
    $ softgrad train --json | jq .test_accuracy
"""

from __future__ import annotations

import json
from pathlib import PurePath
from typing import Any

import click

from softgrad.app._data import BUILTIN
from softgrad.cli._group import fail, warn
from softgrad.cli._options import inverse_regularisation_option

SOLVERS = ("auto", "lbfgs", "newton-cg", "newton-cholesky", "sgd", "adam")


@click.command()
@click.option(
    "--data",
    default="iris",
    show_default=True,
    metavar="{" + ",".join(BUILTIN) + "}|PATH.csv|PATH.parquet",
    help="A dataset bundled with scikit-learn, or a CSV (header row) or Parquet file.",
)
@click.option("--target", metavar="COLUMN", help="Label column of a CSV or Parquet file.")
@click.option(
    "--solver",
    type=click.Choice(SOLVERS),
    default="auto",
    show_default=True,
    help="Optimiser (auto: newton-cholesky for small models, else newton-cg or lbfgs by size).",
)
@inverse_regularisation_option()
@click.option(
    "--max-iter",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Iterations (epochs for sgd/adam); 0 keeps the initial all-zero weights.",
)
@click.option(
    "--test-size",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.25,
    show_default=True,
    help="Held-out fraction.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Split and shuffling seed.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Run folder, new or empty (default: runs/<timestamp>, linked as runs/latest).",
)
@click.option(
    "--force", is_flag=True, help="Replace the run files in an existing, non-empty --out folder."
)
@click.option(
    "--encoding",
    default="utf-8",
    show_default=True,
    help="Text encoding of a CSV file (e.g. latin-1).",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Fit on the Dask cluster of this scheduler (e.g. tcp://10.0.0.5:8786).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar or tables: one summary line.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON on stdout only.")
def train(quiet: bool, as_json: bool, **options: Any) -> None:
    """Train the post's network (D inputs, K softmax outputs) and write a run folder.

    The run folder (model.npz, metrics.json, loss_curve.svg,
    softmax_jacobian.svg) appears whole or not at all. A CSV file's delimiter
    (comma, semicolon, tab) is detected from its header. Files are read in
    blocks, with a progress bar from the start.
    """
    from rich.console import Console

    from softgrad.app._training import TrainConfig, require_app_extras
    from softgrad.app._training import train as run_training

    require_app_extras("softgrad train")
    from softgrad.models import ModelFileError

    # every other option is a field of TrainConfig, by the same name
    data, target, out = options["data"], options["target"], options["out"]
    if data in BUILTIN and target is not None:
        msg = f"--target applies to CSV files only; {data!r} is a bundled dataset"
        raise click.UsageError(msg)
    if data not in BUILTIN and data.lower().endswith((".csv", ".parquet")) and target is None:
        kind = "CSV" if data.lower().endswith(".csv") else "Parquet"
        msg = f"a {kind} file needs --target COLUMN, the column of class labels in {data!r}"
        raise click.UsageError(msg)
    if out is not None and not out.strip():
        msg = "--out is empty; name a folder for the run, e.g. --out runs/iris"
        raise click.UsageError(msg)
    config = TrainConfig(**options)
    console = Console(stderr=as_json)
    try:
        if quiet or as_json:
            result = run_training(config)
        else:
            result = _train_with_progress(config, console, run_training)
    except (ValueError, ModelFileError, FloatingPointError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the run folder: {exc.strerror or exc} ({exc.filename or out})")
    m = result.metrics
    for w in result.warnings:
        warn(w)
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    if quiet:
        click.echo(
            f"test accuracy {m['test_accuracy']:.4f} ({m['n_test']} samples), "
            f"{m['n_iter']} {m['iteration_unit']}s, run folder {result.run_dir}"
        )
        return
    _print_summary(console, m, result)


def _short(data: str, width: int = 16) -> str:
    """The progress bar's name for the data: the file name, cut to ``width`` characters."""
    name = PurePath(data).name or data
    return name if len(name) <= width else name[: width - 1] + "…"


def _train_with_progress(config: Any, console: Any, run_training: Any) -> Any:
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    name = _short(config.data)
    reading = Progress(
        TextColumn("[bold]reading[/] {task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    read_task = reading.add_task(name, total=None)
    columns = (
        TextColumn("[bold]training[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("objective {task.fields[objective]}"),
        TimeElapsedColumn(),
    )
    bar = Progress(*columns, console=console, transient=False)
    task = bar.add_task(name, total=config.max_iter, objective="—")
    if config.data not in BUILTIN:
        reading.start()  # at once: a large file takes a while before the first iteration

    def read(done: int, total: int) -> None:
        reading.update(read_task, completed=done, total=total)

    def progress(iteration: int, objective: float) -> None:
        if iteration == 1:  # the data is read: the fitting bar takes over
            reading.stop()
            bar.start()
        bar.update(task, completed=iteration, objective=f"{objective:.5f}")

    try:
        result = run_training(config, progress, read)
        # converged before max_iter: show the bar as done at the real count
        n_iter = result.metrics["n_iter"]
        bar.update(task, total=max(n_iter, 1), completed=n_iter)
    finally:
        reading.stop()
        bar.stop()
    return result


def _print_summary(console: Any, m: dict[str, Any], result: Any) -> None:
    from rich.table import Table

    console.print(
        f"[bold]{m['data']}[/]: D = {m['n_features']} inputs → K = {len(m['classes'])} softmax "
        f"outputs, {m['n_train']} training / {m['n_test']} held-out samples"
    )
    console.print(
        f"held-out accuracy [bold green]{m['test_accuracy']:.4f}[/] "
        f"(training {m['train_accuracy']:.4f}) after {m['n_iter']} {m['solver_used']} "
        f"{m['iteration_unit']}s "
        f"in {m['fit_seconds']:.2f} s"
    )
    names = [str(c) for c in m["classes"]]
    table = Table(
        title=f"confusion matrix (held out; rows: true {m['target']})", title_justify="left"
    )
    table.add_column("true \\ predicted", style="bold")
    for name in names:
        table.add_column(name, justify="right")
    for name, row in zip(names, m["confusion_matrix"], strict=True):
        cells = [
            f"[green]{v}[/]" if i == j and v else (f"[red]{v}[/]" if v else "·")
            for j, v in enumerate(row)
            for i in [names.index(name)]
        ]
        table.add_row(name, *cells)
    console.print(table)
    curve = m["loss_curve"]
    tail = ", ".join(f"{v:.6f}" for v in curve[-3:])
    console.print(f"loss curve: {curve[0]:.6f} → … → {tail} (objective, {len(curve)} points)")
    g = m["gradcheck"]
    verdict = "[green]ok[/]" if g["ok"] else "[bold red]FAILED[/]"
    console.print(
        f"gradient check {verdict}: gradient & HVP vs finite differences, "
        f"max rel. err {g['max_rel_err']:.1e}"
    )
    console.print(f"run folder [bold]{result.run_dir}[/]")
    console.print("  " + ", ".join(m["files"].values()))
