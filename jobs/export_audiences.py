"""spark-submit entry point for `segcore audiences`: same arguments, e.g.

spark-submit jobs/export_audiences.py --config conf/cluster.yaml --set as_of=2026-06-30 --name winback
"""

import sys

from segcore.cli.commands import main

if __name__ == "__main__":
    sys.exit(main(["audiences", *sys.argv[1:]]))
