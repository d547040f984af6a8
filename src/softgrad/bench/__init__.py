"""Benchmarks: softgrad's kernels beside NumPy, SciPy, PyTorch and JAX, measured in one run.

Run ``python -m benchmarks`` from a checkout or ``softgrad bench`` from an
installed package. For every operation × shape × dtype × implementation it
prints the median time, the effective bandwidth (the bytes the operation must
move at least, over the median time), that bandwidth as a fraction of the
machine's copy bandwidth (``np.copyto``, measured first, in the same process)
and the speed relative to PyTorch (PyTorch's time over this one's: above 1 is
faster). Each line also records the CPU the rest of the machine used while it
was timed (busy cores from ``/proc/stat`` minus this process's own CPU time):
near 0 is a clean measurement, near 1 means another process held a core.

Timings are never asserted anywhere: tests check values, this module measures.
"""

from softgrad.bench._run import Record, main, run

__all__ = ["Record", "main", "run"]
