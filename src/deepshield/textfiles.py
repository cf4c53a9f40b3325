"""Reading text and JSON files that a person names on the command line.

Each failure (no file, a folder, no permission, not UTF-8, not JSON) becomes one `DeepshieldError` that names
the file, so a command prints one line and exits non-zero instead of a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepshield.errors import DeepshieldError


def read_text_file(path: Path, what: str = "file") -> str:
    if not path.is_file():
        raise DeepshieldError(f"no {what} at {path}")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DeepshieldError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise DeepshieldError(f"cannot read {path}: {exc.strerror}") from None


def read_json_file(path: Path, what: str = "JSON file") -> Any:
    try:
        return json.loads(read_text_file(path, what))
    except json.JSONDecodeError as exc:
        raise DeepshieldError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
