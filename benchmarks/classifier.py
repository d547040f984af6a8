"""``python -m benchmarks.classifier [OPTIONS]`` is ``softgrad bench classifier [OPTIONS]`` (kept for old commands)."""

import sys

from softgrad.bench import main

if __name__ == "__main__":
    sys.exit(main(["classifier", *sys.argv[1:]], prog_name="python -m benchmarks"))
