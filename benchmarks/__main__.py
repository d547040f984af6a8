"""``python -m benchmarks``: runs :func:`softgrad.bench.main` (also ``softgrad bench``)."""

import sys

from softgrad.bench import main

if __name__ == "__main__":
    sys.exit(main())
