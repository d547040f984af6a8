"""``softgrad predict``: predictions of a saved model for the rows of a CSV file.

Example::

    $ softgrad predict runs/latest/model.npz flowers.csv --proba > predictions.csv
"""

from __future__ import annotations

import csv
import sys

import click

from softgrad.cli._group import fail


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
@click.option(
    "--encoding", default="utf-8", show_default=True, help="Text encoding of DATA (e.g. latin-1)."
)
def predict(model: str, data: str, proba: bool, encoding: str) -> None:
    """Predict the class of each row of a CSV file with a saved model; CSV on stdout.

    DATA needs a header row with the training's feature names (any order); a
    column named like the model's target is ignored.
    """
    from softgrad.app._training import predict_csv

    try:
        table = predict_csv(model, data, proba=proba, encoding=encoding)
    except (ValueError, OSError) as exc:  # ModelFileError and DataError are ValueErrors
        fail(str(exc))
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
