"""When a file's stat (modification time, size, inode) may stand for its content.

Caches here key what they read by a file's stat, so an edit is noticed without reading the file
again. A modification time only moves by the file system's clock step (a few milliseconds on
ext4, a second or two elsewhere): a file rewritten at the same size within that step of the read
keeps its stat and would be served from the cache stale. So, as git does with its "racily clean"
entries, what was read from a file changed less than `RACY_NS` ago is not cached.
"""

from __future__ import annotations

import time

RACY_NS = 2_000_000_000


def settled(mtime_ns: int) -> bool:
    """Whether a later change to a file last modified at `mtime_ns` must move its stat."""
    return time.time_ns() - mtime_ns > RACY_NS
