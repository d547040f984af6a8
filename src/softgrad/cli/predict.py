"""``softgrad predict``: predictions of a saved model for the rows of a CSV or Parquet file.

Rows stream through: each block of the file is predicted and written before
the next one is read, so memory stays bounded and the first lines appear at
once, whatever the file's size.

Example::

    $ softgrad predict runs/latest/model.npz flowers.csv --proba > predictions.csv
    $ softgrad predict runs/latest/model.npz big.parquet | head
"""

from __future__ import annotations

import csv
import errno
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
    """Predict the class of each row of a CSV or Parquet file with a saved model; CSV on stdout.

    DATA needs a header row with the training's feature names (any order); a
    column named like the model's target is ignored. Rows are read, predicted
    and written block by block.
    """
    from softgrad.app._training import stream_predictions

    writer = csv.writer(sys.stdout, lineterminator="\n")
    try:
        header, blocks = stream_predictions(model, data, proba=proba, encoding=encoding)
        writer.writerow(header)
        for lines in blocks:
            sys.stdout.write(lines)
            sys.stdout.flush()
    except (ValueError, OSError) as exc:  # ModelFileError and DataError are ValueErrors
        if isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.ENOSPC):
            raise  # the CLI's own handling: a closed pipe is quiet, a full disk one line
        fail(str(exc))
