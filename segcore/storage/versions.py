"""The crash-safe layout of output partitions: every replacement is a new version folder, made
current by one atomic write of a small pointer file.

    <table>/as_of=2026-06-30/_CURRENT                    {"version": "v-20260630T031500-1a2b3c4d"}
    <table>/as_of=2026-06-30/v-20260630T031500-1a2b3c4d/  part-*.parquet, _SUCCESS, sidecar files

A writer stages each partition's data in a hidden ``_tmp_<version>`` folder, renames it to
``<version>``, replaces ``_CURRENT`` (a temporary file renamed over it; a direct PUT on object
stores), and only then deletes the older versions. Readers read ``_CURRENT`` first, so at any
instant -- and after a crash at any point -- they see the complete old or the complete new data.
Partitions committed together (a scoring's segments and profiles) share the version name: each
follower's ``_CURRENT`` points at the first partition's, so one pointer write commits them all.
A partition without ``_CURRENT`` is in the previous layout (files directly in the partition
folder): it is read as such, and replaced like any other. The next write of a partition removes
what killed writes left behind (``_tmp_…`` and uncommitted version folders; ``_tmp_<partition>_…``
beside it from the previous layout, whose ``_old_<partition>_…`` is put back if the partition was
lost between that layout's two renames).

Files are reached through a :class:`Store`, so the rules live here once, for Spark jobs (Hadoop's
FileSystem) and for pandas readers (:class:`LocalStore`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import posixpath
import re
import uuid
from dataclasses import dataclass
from typing import Protocol

from segcore.errors import LakeError
from segcore.runtime.crash_points import pause

POINTER = "_CURRENT"
LEASE = "_LEASE"  # the writer's lease (segcore.storage.lease): never cleaned away
VERSION_PREFIX = "v-"
STAGING_PREFIX = "_tmp_"
STEPS = ("staged", "published", "pointer-temp", "committed")
_PREFIX = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*:(?://[^/]*)?)?(.*)$")  # scheme://authority, path


class Store(Protocol):
    """The file operations the layout needs. ``direct_put``: a written file appears whole or not
    at all (object stores), so a pointer is written in place rather than renamed over."""

    direct_put: bool

    def read(self, path: str) -> str | None: ...
    def entries(self, folder: str) -> list[tuple[str, bool]]: ...  # (name, is a folder); [] if none
    def write(self, path: str, text: str) -> None: ...
    def rename(self, source: str, target: str) -> None: ...  # target must not exist
    def replace(self, source: str, target: str) -> None: ...  # atomically, over an existing file
    def delete(self, path: str) -> None: ...  # recursively; nothing if missing


class LocalStore:
    """The local file system, for reading partitions without Spark (pandas, pyarrow, scripts)."""

    direct_put = False

    def read(self, path: str) -> str | None:
        try:
            with open(path) as file:
                return file.read()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def entries(self, folder: str) -> list[tuple[str, bool]]:
        try:
            return [(entry.name, entry.is_dir()) for entry in os.scandir(folder)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def write(self, path: str, text: str) -> None:
        with open(path, "w") as file:
            file.write(text)

    def rename(self, source: str, target: str) -> None:
        os.rename(source, target)

    def replace(self, source: str, target: str) -> None:
        os.replace(source, target)

    def delete(self, path: str) -> None:
        import shutil

        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)


def join(folder: str, name: str) -> str:
    return f"{folder.rstrip('/')}/{name}"


def _relative(source: str, target: str) -> str:
    """``target`` relative to the folder ``source`` where both are on one file system."""
    source_root, source_path = _PREFIX.match(source).groups()
    target_root, target_path = _PREFIX.match(target).groups()
    if source_root != target_root:
        return target
    return posixpath.relpath(target_path, source_path)


def _locate(folder: str, reference: str) -> str:
    root, path = _PREFIX.match(folder).groups()
    if _PREFIX.match(reference).group(1) or reference.startswith("/"):
        return reference
    return f"{root or ''}{posixpath.normpath(posixpath.join(path, reference))}"


def _pointer(store: Store, partition: str) -> dict | None:
    text = store.read(join(partition, POINTER))
    if text is None:
        return None
    try:
        pointer = json.loads(text)
    except ValueError:
        pointer = None
    if not isinstance(pointer, dict) or not ({"version", "follows"} & set(pointer)):
        raise LakeError(
            f"output partition {partition}: its pointer file {POINTER} is unreadable: "
            "rerun the stage that writes it"
        )
    return pointer


def _has_files(store: Store, partition: str) -> bool:
    entries = store.entries(partition)
    return any(not is_folder and not name.startswith(("_", ".")) for name, is_folder in entries)


def _committed(store: Store, partition: str) -> str | None:
    """The committed version of ``partition`` as a name inside it: ``v-…``, ``.`` for data in the
    previous layout, None where nothing is committed."""
    pointer = _pointer(store, partition)
    if pointer is None:
        return "." if _has_files(store, partition) else None
    if "version" in pointer:
        return pointer["version"]
    primary = _pointer(store, _locate(partition, pointer["follows"]))
    version = primary.get("version") if primary else None
    before = pointer.get("before", {})
    if version == before.get("version"):  # the primary has not been committed since this follower joined
        return before.get("data")
    return version


def current(store: Store, partition: str) -> str | None:
    """The folder holding the committed data of ``partition`` (a version folder, or the partition
    folder itself in the previous layout), or None where nothing was committed."""
    version = _committed(store, partition)
    if version is None:
        return None
    return partition.rstrip("/") if version == "." else join(partition, version)


def local_partition(path: str | os.PathLike) -> str:
    """The committed data folder of a partition on the local file system, for pandas or pyarrow:
    ``pd.read_parquet(local_partition("segments/as_of=2026-06-30"))``."""
    folder = current(LocalStore(), os.fspath(path))
    if folder is None:
        raise LakeError(f"output partition {os.fspath(path)} does not exist: run the stage that writes it")
    return folder


def _recover_previous_layout(store: Store, partition: str) -> None:
    """Leftovers the previous layout's writer left beside ``partition`` when killed: staging
    folders are deleted; a retired copy is put back where the partition itself is missing."""
    parent, name = partition.rstrip("/").rsplit("/", 1)
    prefixes = (f"_tmp_{name}_", f"_old_{name}_")
    leftovers = [entry for entry, _ in store.entries(parent) if entry.startswith(prefixes)]
    if not [entry for entry, _ in store.entries(partition) if entry != LEASE]:
        retired = sorted(entry for entry in leftovers if entry.startswith("_old_"))
        if retired:
            store.delete(partition)  # an empty folder (made by the writability check) or nothing
            store.rename(join(parent, retired[-1]), partition)
            leftovers.remove(retired[-1])
    for entry in leftovers:
        store.delete(join(parent, entry))


def clean(store: Store, partition: str) -> None:
    """Delete everything in ``partition`` but its pointer and its committed data: what a killed
    write left behind, and the versions a finished one replaced."""
    _recover_previous_layout(store, partition)
    kept = _committed(store, partition)
    for name, is_folder in store.entries(partition):
        if name in (POINTER, LEASE, kept) or (kept == "." and not is_folder):
            continue
        store.delete(join(partition, name))


@dataclass(frozen=True)
class Pending:
    """Partitions being replaced together under one new version; the first one's pointer commits all."""

    partitions: tuple[str, ...]
    version: str

    def staging(self, partition: str) -> str:
        """Where the writer puts ``partition``'s new data (hidden from readers of the table)."""
        return join(partition, f"{STAGING_PREFIX}{self.version}")


def begin(store: Store, partitions: list[str]) -> Pending:
    """Clean the partitions of earlier killed writes and name the new version."""
    for partition in partitions:
        clean(store, partition)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return Pending(tuple(partitions), f"{VERSION_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}")


def _put(store: Store, path: str, content: dict) -> None:
    """Replace the small file ``path`` atomically: readers see the old content or the new."""
    text = json.dumps(content)
    if store.direct_put:
        store.write(path, text)
        return
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    store.write(temporary, text)
    pause("pointer-temp")
    store.replace(temporary, path)


def commit(store: Store, pending: Pending) -> None:
    """Make the staged data current: publish the version folders, point the followers at the
    primary, move the primary's pointer (the commit), then delete what it replaced."""
    pause("staged")
    for partition in pending.partitions:
        store.rename(pending.staging(partition), join(partition, pending.version))
    pause("published")
    primary, *followers = pending.partitions
    primary_version = _committed(store, primary)
    for follower in followers:
        # Until the primary's pointer moves, the follower's data is what it was.
        before = {
            "version": primary_version if primary_version != "." else None,
            "data": _committed(store, follower),
        }
        _put(store, join(follower, POINTER), {"follows": _relative(follower, primary), "before": before})
    _put(store, join(primary, POINTER), {"version": pending.version})
    pause("committed")
    for partition in pending.partitions:
        clean(store, partition)


def abort(store: Store, pending: Pending) -> None:
    """Remove a failed write's staged and published folders, unless its commit went through."""
    if _committed(store, pending.partitions[0]) == pending.version:
        return
    for partition in pending.partitions:
        store.delete(pending.staging(partition))
        store.delete(join(partition, pending.version))
