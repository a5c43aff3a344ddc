"""``python -m segcore.tools.faults [--workdir DIR] [--case NAME ...] [--customers N]``: run the fault
campaign and print its table (exit 1 where an output was lost or a case ended in a traceback)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from segcore.errors import SegcoreError
from segcore.tools.faults.campaign import Campaign, failed, run_cases, table
from segcore.tools.faults.cases import all_cases


def main(argv: list[str] | None = None) -> int:
    cases = all_cases()
    parser = argparse.ArgumentParser(prog="scripts/faults", description=__doc__)
    parser.add_argument("--workdir", help="a fresh folder for the campaign (default: a temporary one)")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--case", action="append", choices=[case.name for case in cases], help="repeatable")
    args = parser.parse_args(argv)
    chosen = [case for case in cases if not args.case or case.name in args.case]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="segcore-faults-")).resolve()
    try:
        campaign = Campaign(workdir, args.customers)
    except SegcoreError as exc:
        print(f"scripts/faults: error: {exc}", file=sys.stderr)
        return exc.exit_code
    results = run_cases(campaign, chosen)
    print(table(results))
    print(f"\nworkdir: {workdir}", file=sys.stderr)
    return 1 if failed(results) else 0


if __name__ == "__main__":
    sys.exit(main())
