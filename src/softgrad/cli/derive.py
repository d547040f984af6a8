"""``softgrad derive``: the post's derivation of the softmax derivative, step by step.

Examples
--------
Print the derivation for the post's three outputs::

    $ softgrad derive

Write a self-contained HTML page and the dependency diagram for four outputs::

    $ softgrad derive -n 4 --format html --output derive.html --diagram deps.png
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from softgrad.cli._options import count_option, output_file_option

__all__ = ["derive"]

_FORMATS = ("text", "markdown", "latex", "html")


@click.command("derive")
@count_option("-n", "n", default=3, help="Number of softmax outputs (indexed derivation beyond 8).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS, case_sensitive=False),
    default="text",
    show_default=True,
    help="Output format (any case: html, HTML).",
)
@output_file_option("--output", "-o", help="Write to FILE instead of the terminal.")
@output_file_option(
    "--diagram", help="Also draw the dependency diagram to FILE (.png, .svg or .pdf; n <= 6)."
)
def derive(n: int, fmt: str, output: Path | None, diagram: Path | None) -> None:
    """Derive dS_i/dz_j = S_i(delta_ij - S_j), every step machine-checked.

    Shows each step with the rule it uses (quotient, exponential, sum,
    independence), the general rule, the Jacobian diag(S) - S S^T, the chain
    rule and softmax + cross-entropy's S - y.
    """
    from softgrad.explain import DIAGRAM_LIMIT
    from softgrad.explain import derive as build

    if diagram is not None:
        if n > DIAGRAM_LIMIT:
            msg = f"the diagram is drawn for n <= {DIAGRAM_LIMIT}, got -n {n}"
            raise click.BadParameter(msg, param_hint="--diagram")
        if diagram.suffix.lower() not in (".png", ".svg", ".pdf"):
            msg = f"FILE must end in .png, .svg or .pdf, got {str(diagram)!r}"
            raise click.BadParameter(msg, param_hint="--diagram")

    # refuse an unwritable destination before building and printing anything
    for path, option in ((output, "--output"), (diagram, "--diagram")):
        if path is not None:
            _check_writable(path, option)

    derivation = build(n)
    render = {
        "text": derivation.to_text,
        "markdown": derivation.to_markdown,
        "latex": derivation.to_latex,
        "html": derivation.to_html,
    }[fmt.lower()]
    document = render()
    try:
        if output is None:
            click.echo(document, nl=False)
        else:
            output.write_text(document, encoding="utf-8")
            click.echo(f"wrote {output}", err=True)
        if diagram is not None:
            derivation.diagram(diagram)
            click.echo(f"wrote {diagram}", err=True)
    except OSError as exc:
        msg = f"could not write: {exc}"
        raise click.ClickException(msg) from exc


def _check_writable(path: Path, option: str) -> None:
    """Raise a usage error unless ``path`` can be created or overwritten."""
    folder = path.parent if str(path.parent) else Path()
    if path.exists():
        ok, why = os.access(path, os.W_OK), "the file is not writable"
    elif not folder.is_dir():
        ok, why = False, f"the folder {str(folder)!r} does not exist"
    else:
        ok, why = os.access(folder, os.W_OK | os.X_OK), f"the folder {str(folder)!r} is read-only"
    if not ok:
        msg = f"cannot write {str(path)!r}: {why}; choose another path"
        raise click.BadParameter(msg, param_hint=option)
