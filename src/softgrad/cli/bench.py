"""``softgrad bench``: time softgrad's kernels beside NumPy, SciPy, PyTorch and JAX."""

from __future__ import annotations

import click


@click.command(
    context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args: tuple[str, ...]) -> None:
    """Measure copy bandwidth, then each operation × shape × dtype × library.

    Options are those of ``python -m benchmarks`` (``--quick``, ``--json PATH``,
    ``--op``, ``--dtype``, ``--impl``, ``--thresholds``, ``--first-call``;
    ``--help`` lists them).

    \b
    Example:
        $ softgrad bench --quick --json bench.json
    """
    from softgrad.bench import main

    raise SystemExit(main(list(args)))
