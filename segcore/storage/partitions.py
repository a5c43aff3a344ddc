"""Output partitions through Spark: crash-safe writes of one or several partitions committed
together (the layout is :mod:`segcore.storage.versions`), and reads of the committed version."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

from py4j.protocol import Py4JJavaError
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from segcore.errors import EnvironmentProblem, LakeError
from segcore.runtime.logs import step
from segcore.storage import versions
from segcore.storage.hadoop import HadoopStore, filesystem
from segcore.storage.lease import partition_leases


@dataclass(frozen=True)
class _Environment:
    """A failure of the machine rather than of the data, recognised in a write's error text."""

    marker: str
    what: str


_ENVIRONMENT_FAILURES = (
    _Environment("No space left on device", "the disk is full"),
    _Environment("Disk quota exceeded", "the disk quota is exhausted"),
    _Environment("Read-only file system", "the file system is read-only"),
    _Environment("Permission denied", "permission denied"),
)


def _java_reason(exc: BaseException) -> str:
    """The Java error's own message (``java.io.IOException: No space left on device``) rather
    than py4j's ``An error occurred while calling …``."""
    if isinstance(exc, Py4JJavaError):
        return str(exc.java_exception.toString())
    return str(exc).split("\n")[0]


def _environment_failure(exc: BaseException, target: str) -> EnvironmentProblem | None:
    """An :class:`EnvironmentProblem` naming ``target`` when ``exc`` (or the Java error it wraps)
    is a full disk, a read-only mount or missing permissions."""
    text = f"{_java_reason(exc)}\n{exc}"
    for failure in _ENVIRONMENT_FAILURES:
        if failure.marker in text:
            return EnvironmentProblem(
                f"cannot write output {target}: {failure.what} ({failure.marker}); the previous data "
                "is kept. Free space or point the output at a writable folder or URI, then rerun"
            )
    return None


@contextmanager
def _environment_failures(target: str) -> Iterator[None]:
    """A write's full disk, read-only mount or missing permission as :class:`EnvironmentProblem`."""
    try:
        yield
    except Exception as exc:
        problem = _environment_failure(exc, target)
        if problem is None:
            raise
        raise problem from None


def ensure_writable(spark: SparkSession, target: str) -> None:
    """The output partition's folder exists (created if need be) and takes a new file: else exit
    code 3. Called before the stage's Spark work."""
    fs, folder = filesystem(spark, target)
    probe = folder.suffix(f"/_segcore_probe_{uuid.uuid4().hex[:8]}")
    try:
        fs.mkdirs(folder)
        fs.create(probe, True).close()
    except Exception as exc:  # py4j wraps the Hadoop IOException
        problem = _environment_failure(exc, target)
        if problem is not None:
            raise problem from None
        raise EnvironmentProblem(
            f"cannot write output {target}: {_java_reason(exc)[-300:]}. Point the output at a writable "
            "folder or URI"
        ) from None
    finally:
        with suppress(Exception):  # where the folder could not be made, there is no probe
            fs.delete(probe, False)


class Outputs:
    """The partitions a stage replaces together (:mod:`segcore.storage.versions`): stage each one's data with
    :meth:`write`; leaving :func:`commit_partitions` without an error commits them all at once."""

    def __init__(self, spark: SparkSession, store: HadoopStore, pending: versions.Pending) -> None:
        self._spark = spark
        self._store = store
        self._pending = pending

    def write(
        self,
        frame: DataFrame,
        target: str,
        sidecar: dict[str, str] | None = None,
        folder: str | None = None,
    ) -> DataFrame:
        """Stage ``frame`` as Parquet for ``target`` (not yet visible to readers) and return the
        staged data, readable until the versions. ``sidecar`` maps file names (starting with ``_``,
        which Spark readers skip) to text written beside the data. ``folder``: the data goes into
        this folder of the partition's version rather than directly into it."""
        staging = self._pending.staging(target)
        data = versions.join(staging, folder) if folder else staging
        with _environment_failures(target):
            frame.write.mode("error").parquet(data)
        for name, text in (sidecar or {}).items():
            self._store.write(versions.join(staging, name), text)
        return self._spark.read.parquet(data)

    def write_text(self, target: str, name: str, text: str) -> None:
        """Stage the small text file ``name`` (starting with ``_``) in ``target``'s version."""
        self._store.write(versions.join(self._pending.staging(target), name), text)

    def write_csv(self, frame: DataFrame, target: str, name: str) -> None:
        """Stage ``frame`` as the one CSV file ``name`` of ``target``'s version, sorted by
        customer_id: UTF-8, a header, RFC 4180 quoting (a field with a comma, quote or line break in
        double quotes, quotes doubled), values exactly as they are (no trimmed spaces)."""
        staging = self._pending.staging(target)
        parts = versions.join(staging, f"_{name}.parts")
        with _environment_failures(target):
            frame.repartition(1).sortWithinPartitions("customer_id").write.mode("error").csv(
                parts,
                header=True,
                quote='"',
                escape='"',
                encoding="UTF-8",
                ignoreLeadingWhiteSpace=False,
                ignoreTrailingWhiteSpace=False,
            )
        written = [entry for entry, is_folder in self._store.entries(parts) if entry.startswith("part-")]
        if written:
            self._store.rename(versions.join(parts, written[0]), versions.join(staging, name))
        else:  # Spark writes no file for no rows: the header alone
            self._store.write(versions.join(staging, name), ",".join(frame.columns) + "\n")
        self._store.delete(parts)


@contextmanager
def commit_partitions(spark: SparkSession, targets: Sequence[str]) -> Iterator[Outputs]:
    """Replace the partitions ``targets`` together: each is checked writable, leased to this
    writer (:mod:`segcore.storage.lease`) and cleaned of earlier killed writes on entry; each must
    be staged with :meth:`Outputs.write`; on a normal exit one pointer write makes them all
    current (readers see all old or all new, even after a crash), on an error the staged data is
    removed and the old partitions stay."""
    for target in targets:
        ensure_writable(spark, target)
    store = HadoopStore(spark, targets[0])
    with partition_leases(store, targets):  # a second writer stops here (exit 3) naming this one
        pending = versions.begin(store, list(targets))
        try:
            yield Outputs(spark, store, pending)
            with step("output", f"commit {', '.join(targets)}"):
                versions.commit(store, pending)
        except BaseException:
            versions.abort(store, pending)
            raise


def write_partition(frame: DataFrame, target: str, sidecar: dict[str, str] | None = None) -> None:
    """Replace the partition ``target`` with ``frame`` (Parquet) atomically: readers see the old
    partition or the new one, never half of one, and a failed write leaves the old one in place."""
    with commit_partitions(frame.sparkSession, [target]) as outputs:
        outputs.write(frame, target, sidecar)


def resolve_partition(
    spark: SparkSession, path: str, what: str = "output partition", hint: str = "run the stage that writes it"
) -> str:
    """The folder holding the committed data of the partition ``path`` (read its pointer first):
    what any reader outside :func:`read_partition` (Dask, pyarrow) must read."""
    folder = versions.current(HadoopStore(spark, path), path)
    if folder is None:
        raise LakeError(f"{what} {path} does not exist: {hint}")
    return folder


def read_partition(spark: SparkSession, path: str, what: str, hint: str) -> DataFrame:
    """Read an output partition written by an earlier stage, with a clear error if it is missing.
    A version replaced between reading the pointer and listing its files is read again."""
    for attempt in range(3):
        folder = resolve_partition(spark, path, what, hint)
        try:
            return spark.read.parquet(folder)
        except AnalysisException as exc:
            if "PATH_NOT_FOUND" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def read_table(spark: SparkSession, path: str) -> DataFrame:
    """Every partition of the output table ``path`` as committed, with its ``as_of`` column: what
    ``spark.read.parquet(path)`` gives when no write is in flight, and exact at any instant."""
    store = HadoopStore(spark, path)
    partitions = sorted(
        name for name, is_folder in store.entries(path) if is_folder and "=" in name and name[0] not in "_."
    )
    folders = [versions.current(store, versions.join(path, name)) for name in partitions]
    folders = [folder for folder in folders if folder is not None]
    if not folders:
        raise LakeError(f"output table {path} has no committed partition: run the stage that writes it")
    return spark.read.option("basePath", path).parquet(*folders)


def partition_dates(spark: SparkSession, table: str, within: str | None = None) -> list[dt.date]:
    """The as_of dates of the committed partitions of output table ``table`` (a folder), oldest
    first; with ``within``, of the committed partitions ``as_of=…/<within>`` (an audience's exports)."""
    store = HadoopStore(spark, table)
    dates = []
    for name, is_folder in store.entries(table):
        if not (is_folder and name.startswith("as_of=")):
            continue
        try:
            day = dt.date.fromisoformat(name.removeprefix("as_of="))
        except ValueError:
            continue  # not a partition of ours
        partition = versions.join(table, name)
        if versions.current(store, versions.join(partition, within) if within else partition) is not None:
            dates.append(day)
    return sorted(dates)
