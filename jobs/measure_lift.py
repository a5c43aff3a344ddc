"""spark-submit entry point for `segcore lift`: same arguments, e.g.

spark-submit jobs/measure_lift.py --config conf/cluster.yaml --audience winback --start 2026-07-01 --days 30
"""

import sys

from segcore.cli.commands import main

if __name__ == "__main__":
    sys.exit(main(["lift", *sys.argv[1:]]))
