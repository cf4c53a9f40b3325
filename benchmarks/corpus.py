"""Where the benchmarks find the shared face corpus: $DEEPSHIELD_SHARED_FACES, else `../shared/data/faces`
beside the repository root (where the tests look), else `/work/shared/data/faces`."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def faces_dir() -> Path:
    """The first of those that exists; the one beside the repository root when none does (callers check)."""
    env = os.environ.get("DEEPSHIELD_SHARED_FACES")
    beside = ROOT.parent / "shared" / "data" / "faces"
    for candidate in ([Path(env)] if env else []) + [beside, Path("/work/shared/data/faces")]:
        if candidate.is_dir():
            return candidate
    return beside
