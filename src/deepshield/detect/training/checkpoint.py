"""Reading training checkpoints (`deepshield train` writes them; export, swa and train read them).

Loaded with `weights_only=True`: a checkpoint holds only tensors, numbers, strings and dicts of them, so nothing
in a file handed to `deepshield export` can run code on load, and a truncated or foreign file is a clear error.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from deepshield.errors import DeepshieldError


def load_checkpoint(path: Path, need: Iterable[str] = ("model", "config")) -> dict[str, Any]:
    """The checkpoint at `path` as a dict holding at least the keys `need`."""
    import torch

    if not path.is_file():
        raise DeepshieldError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; the unpickler's errors on others are noise
        raise DeepshieldError(f"{path} is not a Deepshield checkpoint (not a torch archive)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a hostile or truncated file fails in many ways inside the unpickler: all mean "not one"
        raise DeepshieldError(f"{path} is not a readable Deepshield checkpoint ({_first_sentence(e)})") from e
    if not isinstance(ck, dict):
        raise DeepshieldError(f"{path} is not a Deepshield checkpoint (a {type(ck).__name__}, not a dict)")
    missing = [k for k in need if k not in ck]
    if missing:
        raise DeepshieldError(f"{path} is not a Deepshield checkpoint: it lacks {', '.join(missing)}")
    return ck


def _first_sentence(e: Exception) -> str:
    """torch's messages go on to advise `weights_only=False`, which is exactly what must not be done here."""
    text = " ".join(str(e).split())
    head = text.split(". ")[0].rstrip(".") if text else ""
    return f"{type(e).__name__}: {head}" if head else type(e).__name__
