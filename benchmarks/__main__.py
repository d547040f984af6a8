"""``python -m benchmarks [SUITE] [OPTIONS]`` is ``softgrad bench [SUITE] [OPTIONS]``."""

import sys

from softgrad.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog_name="python -m benchmarks"))
