"""Files in a folder nobody is trusted with: no symbolic link below a root is ever followed
(folders opened one by one without following links, files with O_NOFOLLOW), and every write
is atomic (a temporary file, fsync, rename), with the permissions the umask allows."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mpt_engine.errors import InvalidInput, RunFailed

NO_FOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
TEMPORARY = re.compile(r"^\..+\.\w+\.tmp$")  # write_in's (and older mkstemp) names


class StoreWriteFailed(RunFailed):
    """The store could not be written (a full disk, a read-only folder)."""


class UnsafeStore(InvalidInput):
    """A symbolic link (or a file) where the store keeps a folder or a file of its own."""


def write_error(path: Path, error: OSError) -> StoreWriteFailed | UnsafeStore:
    if error.errno == errno.ELOOP:
        return unsafe_link(path)
    reason = "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))
    return StoreWriteFailed(f"cannot write {path}: {reason}; files already written are intact")


def unsafe_link(path: Path) -> UnsafeStore:
    return UnsafeStore(
        f"refusing to follow {path}: a symbolic link inside the run store (remove it)"
    )


@contextlib.contextmanager
def open_folder(root: Path, parts: Sequence[str] = (), create: bool = False) -> Iterator[int]:
    """A descriptor of root/parts..., each part a real folder, never a symbolic link: whatever
    is planted below `root`, a write through this descriptor stays inside it."""
    path = root
    try:
        if create:
            root.mkdir(parents=True, exist_ok=True)
        handle = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as error:
        raise write_error(root, error) from None
    try:
        for part in parts:
            path = path / part
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=handle)
            try:
                child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | NO_FOLLOW, dir_fd=handle)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise unsafe_link(path) from None
                raise write_error(path, error) from None
            os.close(handle)
            handle = child
        yield handle
    finally:
        os.close(handle)


def write_in(folder: int, name: str, data: bytes, shown: Path) -> None:
    """Write `name` in the open folder via a temporary file, flush, fsync and rename: readers
    see the old content or the new, never half. A symbolic link named `name` is replaced, not
    followed; the new file has the permissions the umask allows."""
    temporary = f".{name}.{secrets.token_hex(4)}.tmp"
    try:
        handle = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NO_FOLLOW, 0o666, dir_fd=folder
        )
    except OSError as error:
        raise write_error(shown, error) from None
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder)
        if isinstance(error, OSError):
            raise write_error(shown, error) from None
        raise


def write_atomic(path: Path, text: str, root: Path | None = None) -> None:
    """Write a file atomically; with `root` (a folder above `path`), no symbolic link below
    `root` is followed."""
    if root is None:
        root, parts = path.parent, []
    else:
        parts = list(path.parent.relative_to(root).parts)
    with open_folder(root, parts, create=bool(parts)) as folder:
        write_in(folder, path.name, text.encode("utf-8"), path)


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def write_json(path: Path, value: Any, root: Path | None = None) -> None:
    write_atomic(path, json_bytes(value).decode("utf-8"), root)


def read_text(path: Path) -> str:
    """A file of the store, never through a symbolic link (OSError: unreadable or absent)."""
    handle = os.open(path, os.O_RDONLY | NO_FOLLOW)
    with os.fdopen(handle, "rb") as file:
        return file.read().decode("utf-8")
