"""``softgrad predict``: predictions of a saved model for the rows of a CSV file.

Example::

    $ softgrad predict runs/latest/model.npz flowers.csv --proba > predictions.csv
"""

from __future__ import annotations

import csv
import sys

import click


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("data", type=click.Path(dir_okay=False))
@click.option("--proba", is_flag=True, help="Add one probability column per class.")
def predict(model: str, data: str, proba: bool) -> None:
    """Write the predictions of MODEL for the rows of DATA (CSV with a header) as CSV to stdout.

    A column named like the model's target is ignored.
    """
    from softgrad.app._training import predict_csv

    try:
        table = predict_csv(model, data, proba=proba)
    except (ValueError, OSError) as exc:  # ModelFileError and DataError are ValueErrors
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
