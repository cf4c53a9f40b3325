"""Files named on a command line, walked lazily: a folder of a million files is listed one directory at a time,
never held as one list, so a batch starts at once and its memory does not grow with the archive."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given; folders walked recursively in name order, hidden files and folders skipped. A missing path
    passes through, so the batch reports it as an error instead of dropping it."""
    for p in paths:
        if not p.is_dir():
            yield p
            continue
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                f = Path(root) / name
                if not name.startswith(".") and f.is_file():
                    yield f
