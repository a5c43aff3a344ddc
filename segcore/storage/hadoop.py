"""The output layout's file operations (:class:`segcore.storage.versions.Store`) through Hadoop's FileSystem,
as Spark writes them: local disks, HDFS, S3 and other object stores."""

from __future__ import annotations

import os

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

# Object stores: a PUT makes the whole object visible at once, and a rename is a copy.
OBJECT_STORES = ("s3", "s3a", "s3n", "gs")


def filesystem(spark: SparkSession, path: str):
    """The Hadoop FileSystem of ``path`` (local, HDFS, S3 ...) and the path as a Hadoop Path."""
    hadoop_path = spark._jvm.org.apache.hadoop.fs.Path(path)
    return hadoop_path.getFileSystem(spark._jsc.hadoopConfiguration()), hadoop_path


def read_text(spark: SparkSession, path: str) -> str | None:
    """A small text file's content, or None where it does not exist."""
    return HadoopStore(spark, path).read(path)


def list_files(spark: SparkSession, path: str) -> list[tuple[str, int]]:
    """(name, size) of every file under ``path``, recursively, sorted."""
    fs, folder = filesystem(spark, path)
    files, listing = [], fs.listFiles(folder, True)
    while listing.hasNext():
        status = listing.next()
        files.append((status.getPath().getName(), int(status.getLen())))
    return sorted(files)


class HadoopStore:
    def __init__(self, spark: SparkSession, path: str) -> None:
        self._spark = spark
        fs, _ = filesystem(spark, path)
        self.scheme = fs.getScheme()
        self.direct_put = self.scheme in OBJECT_STORES

    def _path(self, path: str):
        """The FileSystem and Hadoop Path of ``path``; the local one without checksum files, so
        that a pointer replaced by a rename has no ``.crc`` file to fall out of step with it."""
        fs, hadoop_path = filesystem(self._spark, path)
        return (fs.getRawFileSystem() if fs.getScheme() == "file" else fs), hadoop_path

    def read(self, path: str) -> str | None:
        fs, file = self._path(path)
        try:
            stream = fs.open(file)
        except Py4JJavaError as exc:
            if "FileNotFoundException" in str(exc.java_exception.getClass().getName()):
                return None
            raise
        try:
            return bytes(self._spark._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)).decode()
        finally:
            stream.close()

    def entries(self, folder: str) -> list[tuple[str, bool]]:
        fs, path = self._path(folder)
        if not fs.exists(path) or not fs.getFileStatus(path).isDirectory():
            return []
        return [(status.getPath().getName(), status.isDirectory()) for status in fs.listStatus(path)]

    @staticmethod
    def _write_and_close(stream, text: str) -> None:
        try:
            stream.write(text.encode())
            stream.hsync()
        finally:
            stream.close()

    def write(self, path: str, text: str) -> None:
        fs, file = self._path(path)
        self._write_and_close(fs.create(file, True), text)

    def create_new(self, path: str, text: str) -> bool:
        """Write the small file ``path`` only if it does not exist (False if it does): one atomic
        step on a local disk (O_EXCL) and on HDFS (create without overwrite)."""
        fs, file = self._path(path)
        if self.scheme == "file":
            try:
                descriptor = os.open(file.toUri().getPath(), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
            return True
        try:
            stream = fs.create(file, False)
        except Py4JJavaError as exc:
            if "FileAlreadyExistsException" in str(exc.java_exception.getClass().getName()):
                return False
            raise
        self._write_and_close(stream, text)
        return True

    def rename(self, source: str, target: str) -> None:
        fs, source_path = self._path(source)
        _, target_path = self._path(target)
        if fs.exists(target_path) or not fs.rename(source_path, target_path):
            raise OSError(f"could not rename {source} to {target}")

    def replace(self, source: str, target: str) -> None:
        """Rename ``source`` over the file ``target`` in one step: rename(2) on a local disk, the
        NameNode's rename with OVERWRITE on HDFS."""
        fs, source_path = self._path(source)
        _, target_path = self._path(target)
        if self.scheme == "file":
            if not fs.rename(source_path, target_path):
                raise OSError(f"could not rename {source} over {target}")
            return
        jvm = self._spark._jvm
        options = self._spark.sparkContext._gateway.new_array(jvm.org.apache.hadoop.fs.Options.Rename, 1)
        options[0] = jvm.org.apache.hadoop.fs.Options.Rename.OVERWRITE
        context = jvm.org.apache.hadoop.fs.FileContext.getFileContext(
            fs.getUri(), self._spark._jsc.hadoopConfiguration()
        )
        context.rename(source_path, target_path, options)

    def delete(self, path: str) -> None:
        fs, hadoop_path = self._path(path)
        fs.delete(hadoop_path, True)
