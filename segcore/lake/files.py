"""Checks of every file of an input folder before Spark reads it: Spark takes a folder's schema
from one file and reads the others as if they agreed, so a file that lacks a column, holds it with
another type (or, for CSV, at another position), or is truncated must be found here, by name.

Files are reached through Hadoop's FileSystem (local, HDFS, S3 ...); only Parquet footers and CSV
header lines are read, never the data.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import SparkSession

from segcore.errors import LakeError
from segcore.storage.hadoop import filesystem

_MAGIC = b"PAR1"
_THREADS = 8
_COMPRESSED = (".gz", ".bz2", ".deflate", ".lz4", ".snappy", ".zst", ".zstd")
_IDENTIFIER = re.compile(r"`([^`]+)`|([A-Za-z_][A-Za-z0-9_]*)")
_SELECT_ALL = re.compile(r"(?:^|[\s,(.])\*\s*(?:,|\)|from\b|$)", re.IGNORECASE)  # *, t.*, count(*)


@dataclass(frozen=True)
class Folder:
    """A folder of input files and how to name it in messages: ``label`` ("table 'orders'") and the
    config ``key`` that sets it ("lake.orders")."""

    label: str
    key: str
    path: str
    format: str
    options: dict[str, str]


def referenced(texts: Iterable[str]) -> set[str]:
    """Lower-cased names a set of column names, expressions or queries may refer to (``*`` when
    one selects every column)."""
    names: set[str] = set()
    for text in texts:
        names.add(text.lower())
        names.update((quoted or bare).lower() for quoted, bare in _IDENTIFIER.findall(text))
        if _SELECT_ALL.search(text):
            names.add("*")
    return names


def data_files(spark: SparkSession, folder: Folder) -> dict[str, int]:
    """The data files under a folder (recursively) and their sizes, skipping names Spark skips
    (``_*``, ``.*``)."""
    fs, root = filesystem(spark, folder.path)
    matches = fs.globStatus(root)  # a plain path, or a glob such as lake/orders/month=2026-*
    if not matches:
        raise LakeError(
            f"{folder.label}: path {folder.path} does not exist: set {folder.key}.path to the folder "
            f"holding its {folder.format.capitalize()} files"
        )
    files = {}
    for match in matches:
        base = match.getPath().toString().rstrip("/")
        listing = fs.listFiles(match.getPath(), True)
        while listing.hasNext():
            status = listing.next()
            path = status.getPath().toString()
            relative = path[len(base) :].strip("/").split("/") if path != base else [path.rsplit("/", 1)[-1]]
            if not any(part.startswith(("_", ".")) for part in relative):
                files[path] = status.getLen()
    if not files:
        raise LakeError(f"{folder.label}: {folder.path} holds no data files: point {folder.key}.path at them")
    return dict(sorted(files.items()))


class _Reader:
    """Reads Parquet footers and CSV header lines through one Hadoop FileSystem, with the JVM
    classes looked up once (each lookup is a round trip to the JVM)."""

    def __init__(self, spark: SparkSession, folder: Folder) -> None:
        jvm = spark._jvm
        self.fs, _ = filesystem(spark, folder.path)
        self.path = jvm.org.apache.hadoop.fs.Path
        self.io = jvm.org.apache.commons.io.IOUtils
        self.lines = jvm.java.io.BufferedReader
        self.decoder = jvm.java.io.InputStreamReader
        self.folder = folder

    def columns(self, file: str, size: int) -> dict[str, str] | None:
        """Column name -> how the file holds it; None where that cannot be read cheaply."""
        try:
            if self.folder.format == "parquet":
                return self._parquet(file, size)
            return self._csv(file)
        except Exception as exc:  # pyarrow and Hadoop raise many kinds; every one means unreadable
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LakeError(
                f"{self.folder.label}: file {file} is not a readable {self.folder.format.capitalize()} file "
                f"(truncated or corrupt: {reason}): rewrite or remove it"
            ) from None

    def _parquet(self, file: str, size: int) -> dict[str, str]:
        """Column name -> "of type <arrow type>", from the file's footer alone."""
        if size < 2 * len(_MAGIC) + 4:
            raise ValueError(f"{size} bytes is too short for Parquet")
        stream = self.fs.open(self.path(file))
        try:
            stream.seek(size - 8)
            tail = bytes(self.io.toByteArray(stream, 8))
            if tail[4:] != _MAGIC:
                raise ValueError("no Parquet footer at the end of the file")
            length = int.from_bytes(tail[:4], "little")
            if length > size - 12:
                raise ValueError(f"footer length {length} exceeds the file size {size}")
            stream.seek(size - 8 - length)
            footer = bytes(self.io.toByteArray(stream, length))
        finally:
            stream.close()
        schema = pq.read_schema(pa.BufferReader(_MAGIC + footer + tail))
        return {field.name: f"of type {_type_name(field.type)}" for field in schema}

    def _csv(self, file: str) -> dict[str, str] | None:
        """Column name -> "at position <n>", from the header line (not for files without a header
        or compressed ones)."""
        options = self.folder.options
        if str(options.get("header", "true")).lower() != "true" or file.lower().endswith(_COMPRESSED):
            return None
        stream = self.fs.open(self.path(file))
        encoding = str(options.get("encoding", options.get("charset", "UTF-8")))
        try:
            line = self.lines(self.decoder(stream, encoding)).readLine()
        finally:
            stream.close()
        separator = str(options.get("sep", options.get("delimiter", ",")))
        quote = str(options.get("quote", '"'))
        names = [name.strip().strip(quote) for name in (line or "").lstrip("\ufeff").split(separator)]
        return {name: f"at position {i + 1}" for i, name in enumerate(names)}


def _type_name(kind: pa.DataType) -> str:
    """Arrow type as Spark would see it: timestamp units and zones do not matter."""
    return "timestamp" if pa.types.is_timestamp(kind) else str(kind)


def check_files(spark: SparkSession, folder: Folder, texts: Iterable[str]) -> list[str]:
    """Check that every data file of ``folder`` is readable and holds each column that ``texts``
    (mapped names, expressions, filters, queries) refer to, like the other files do; return the
    files. Raises :class:`LakeError` naming the first offending file and column."""
    files = data_files(spark, folder)
    reader = _Reader(spark, folder)
    with ThreadPoolExecutor(_THREADS) as pool:  # file system latency, not CPU: overlap the reads
        schemas = dict(zip(files, pool.map(reader.columns, files, files.values()), strict=True))
    known = {
        file: {name.lower(): (name, kind) for name, kind in cols.items()}
        for file, cols in schemas.items()
        if cols is not None
    }
    wanted = referenced(texts)
    names = {key for cols in known.values() for key in cols}
    for name in sorted(names if "*" in wanted else names & wanted):
        having = [file for file in known if name in known[file]]
        lacking = [file for file in known if name not in known[file]]
        shown = known[having[0]][name][0]
        if lacking:
            raise LakeError(
                f"{folder.label}: file {lacking[0]} has no column '{shown}' ({len(lacking)} of {len(known)} "
                f"files lack it, the others have it): rewrite or remove that file, or map a column every "
                f"file has"
            )
        kinds = Counter(known[file][name][1] for file in having)
        usual = kinds.most_common(1)[0][0]
        odd = [file for file in having if known[file][name][1] != usual]
        if odd:
            raise LakeError(
                f"{folder.label}: file {odd[0]} has column '{shown}' {known[odd[0]][name][1]}, the other "
                f"files {usual} ({len(odd)} of {len(known)} files differ): rewrite that file like the others"
            )
    return list(files)
