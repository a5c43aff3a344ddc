#!/usr/bin/env python
"""k-means benchmark (same as `segcore bench`): run with --help for the options, --quick for a
run of under two minutes."""

import sys

from segcore.tools.bench import main

if __name__ == "__main__":
    sys.exit(main())
