"""spark-submit entry point for `segcore drift`: same arguments, e.g.

spark-submit jobs/drift_segments.py --config conf/default.yaml --from 2026-05-31 --to 2026-06-30

Exit code 4 when a drift.* threshold is crossed.
"""

import sys

from segcore.cli.commands import main

if __name__ == "__main__":
    sys.exit(main(["drift", *sys.argv[1:]]))
