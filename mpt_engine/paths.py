"""Every file and folder mpt writes to, in one place: where each lives is decided here and
nowhere else.

MPT_HOME (results, kept): runs/<run id>/, locks/<run id>.lock, trash/, slurm/ (submissions,
task logs), data/paws15/. MPT_CACHE (regenerable): tokenizers/, tokens/, kshot/, models/. The
state folder: the app's last launcher form."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import platformdirs

from mpt_engine.errors import InvalidInput

T = TypeVar("T")


def home() -> Path:
    """Root of the run store: MPT_HOME, or the platform's user data folder for "mpt"."""
    configured = os.environ.get("MPT_HOME")
    if not configured:
        return platformdirs.user_data_path("mpt")
    return _folder(Path(configured).expanduser(), "MPT_HOME")


RUNS, LOCKS = "runs", "locks"  # below MPT_HOME; the store opens them without following links
TRASH = "trash"  # below MPT_HOME: where `mpt results rm` and `mpt run --rerun` move runs


def runs_dir() -> Path:
    return home() / RUNS


def tensorboard_dir() -> Path:
    """Where runs logged with --log tensorboard write their event files, one folder each."""
    return home() / "tensorboard"


def exports_dir() -> Path:
    """Where the app writes exported tables unless told otherwise (not the current folder,
    which is often a git checkout)."""
    return home() / "exports"


def slurm_dir() -> Path:
    """Slurm submissions (submissions.jsonl) and the array tasks' logs (jobs/)."""
    return home() / "slurm"


def paws15_file() -> Path:
    """PAWS-15, once `mpt data build-paws15` has made it."""
    return home() / "data" / "paws15" / "paws15.jsonl"


def cache_entry(kind: str) -> Path:
    """A kind of cache entry's folder: tokenizers (tiny ones), tokens (tokenised text), kshot
    (downloaded k-shot splits), models (built backbones) or runs (each store's finished runs,
    parsed)."""
    if kind not in CACHE_KINDS:
        raise ValueError(f"unknown cache kind {kind!r}")
    return cache_dir() / kind


CACHE_KINDS = ("tokenizers", "tokens", "kshot", "models", "runs")


def cache_dir() -> Path:
    """Regenerable files (tiny tokenizers, downloaded splits): MPT_CACHE or the user cache."""
    configured = os.environ.get("MPT_CACHE")
    if not configured:
        return platformdirs.user_cache_path("mpt")
    return _folder(Path(configured).expanduser(), "MPT_CACHE")


def state_dir() -> Path:
    """Non-essential state (the app's last selections): the user state folder."""
    return platformdirs.user_state_path("mpt")


def _folder(path: Path, variable: str) -> Path:
    """`path` when it is a folder or can become one (its nearest existing ancestor is a folder);
    InvalidInput otherwise, before anything tries to write there."""
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        raise InvalidInput(f"{variable} {path} is not a folder ({existing} is not a folder)")
    return path


def writable_cache_dir() -> Path:
    """cache_dir(), checked before a run: a cache that cannot be written would fail later with
    a raw OSError that does not say MPT_CACHE is the cause."""
    what = "MPT_CACHE" if os.environ.get("MPT_CACHE") else "the cache folder"
    return check_writable(cache_dir(), what, "; set MPT_CACHE to a folder you can write")


def check_writable(path: Path, what: str, hint: str = "") -> Path:
    """`path` when this process can create files there (in it, or in the nearest folder that
    exists above it); InvalidInput naming `what` otherwise, before any work is done. access(2)
    reports a read-only file system even to root."""
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "a read-only file system" if _read_only(existing) else "no write permission"
        raise InvalidInput(f"{what} {path} is not writable ({reason} at {existing}){hint}")
    return path


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def cached(entry: Path, build: Callable[[Path], None], load: Callable[[Path], T]) -> T:
    """load(entry) of a cache entry (a file or a folder), built first when it is missing or
    fails to load: a damaged entry is rebuilt, never fatal. Every cache write goes through
    here: build(temporary) writes the whole entry at a fresh temporary path beside it, which is
    then renamed into place, so neither a kill, a full disk nor a process building the same
    entry at the same moment can leave (or show) half an entry."""
    if entry.exists():
        try:
            return load(entry)
        except Exception:  # torn, or written by another version: build it again
            pass
    entry.parent.mkdir(parents=True, exist_ok=True)
    temporary = entry.with_name(f".{entry.name}.{secrets.token_hex(4)}.tmp")
    try:
        build(temporary)
        if temporary.is_dir() and entry.is_dir():
            try:  # a process that built the same entry meanwhile wins: its entry is as good
                return load(entry)
            except Exception:  # damaged: a folder cannot replace a folder in one step
                pass
            aside = entry.with_name(f".{entry.name}.{secrets.token_hex(4)}.old")
            with contextlib.suppress(FileNotFoundError):
                entry.rename(aside)
            shutil.rmtree(aside, ignore_errors=True)
        try:
            os.replace(temporary, entry)
        except OSError:
            if not temporary.is_dir():
                raise  # a full disk, a read-only cache: the caller says so
            # another process put its folder in place first: it is just as good
    finally:
        if temporary.is_dir():
            shutil.rmtree(temporary, ignore_errors=True)
        else:
            temporary.unlink(missing_ok=True)
    return load(entry)
