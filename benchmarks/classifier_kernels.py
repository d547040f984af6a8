"""``python -m benchmarks.classifier_kernels [OPTIONS]`` is ``softgrad bench classifier_kernels [OPTIONS]`` (kept for old commands)."""

import sys

from softgrad.bench import main

if __name__ == "__main__":
    sys.exit(main(["classifier_kernels", *sys.argv[1:]], prog_name="python -m benchmarks"))
