"""Application code behind ``softgrad train``/``predict``: runs, CSV data, plots (not library API)."""
