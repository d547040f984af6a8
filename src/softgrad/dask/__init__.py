"""Dask versions of softgrad's functions: row blocks on the cluster.

``softgrad.linear_cross_entropy`` and ``linear_cross_entropy_and_grad``
called with a Dask array ``h`` come here (see :mod:`softgrad.dask._linear`).
"""

from __future__ import annotations

from softgrad.dask._linear import linear_cross_entropy as linear_cross_entropy
from softgrad.dask._linear import linear_cross_entropy_and_grad as linear_cross_entropy_and_grad

__all__ = ["linear_cross_entropy", "linear_cross_entropy_and_grad"]
