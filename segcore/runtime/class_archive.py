"""The Spark JVM's class-data-sharing archive: the classes a segcore Spark job loads, which every
local session's JVM maps instead of loading and verifying some 12,000 classes from Spark's jars
(3 to 5 s less per command here: README, Results). Built once per environment by
:mod:`segcore.tools.build_class_archive` (``scripts/bootstrap`` runs it after an install). A speed
setting only: a JVM that cannot use the archive (another Java or Spark since it was built) runs
without it, silently."""

from __future__ import annotations

import sys
from pathlib import Path

ARCHIVE = Path(sys.prefix, "share", "segcore", "spark-classes.jsa")


def archive_options() -> list[str]:
    """The JVM options that map :data:`ARCHIVE`, where it was built."""
    return mapping_options(ARCHIVE) if ARCHIVE.is_file() else []


def mapping_options(archive: Path) -> list[str]:
    """The JVM options that map ``archive`` (its own logging off: a JVM that cannot use it would
    say so on stdout), quoted for Spark's launcher, which splits its option strings at spaces
    outside quotes."""
    return [f'"-XX:SharedArchiveFile={archive}"', "-Xlog:cds=off,cds+dynamic=off"]
