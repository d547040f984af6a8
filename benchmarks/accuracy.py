"""``python -m benchmarks.accuracy [OPTIONS]`` is ``softgrad bench accuracy [OPTIONS]`` (kept for old commands)."""

import sys

from softgrad.bench import main

if __name__ == "__main__":
    sys.exit(main(["accuracy", *sys.argv[1:]], prog_name="python -m benchmarks"))
