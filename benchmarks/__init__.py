"""``python -m benchmarks ...``: a shim forwarding to :mod:`softgrad.bench` (``softgrad bench``)."""
