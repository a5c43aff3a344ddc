"""spark-submit entry point for `segcore score`: same arguments, e.g.

spark-submit jobs/score_segments.py --config conf/default.yaml --set as_of=2026-06-30
"""

import sys

from segcore.cli.commands import main

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
