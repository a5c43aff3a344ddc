"""spark-submit entry point for `segcore features`: same arguments, e.g.

spark-submit jobs/build_features.py --config conf/default.yaml --set as_of=2026-06-30
"""

import sys

from segcore.cli.commands import main

if __name__ == "__main__":
    sys.exit(main(["features", *sys.argv[1:]]))
