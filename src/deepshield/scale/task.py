"""The per-file unit of work an archive batch runs: built once per worker (models loaded in `setup`), then called
once per file, always returning an outcome (a per-file error is a result, not an exception)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from deepshield.jsontypes import JsonValue


@dataclass(frozen=True)
class FileOutcome:
    file: str
    #: The file's content hash where the task learnt it: `--resume` skips a file only if it is unchanged.
    sha256: str | None
    #: The JSON object written for the file (the same as the command writes without Ray).
    record: dict[str, JsonValue]
    error: str | None = None
    #: Extra flat string columns for Parquet output (a hash task's hashes), named by `FileTask.columns`.
    columns: dict[str, str | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def line(self) -> str:
        return json.dumps(self.record)

    @classmethod
    def crashed(cls, path: str, message: str) -> FileOutcome:
        """A file whose task raised or whose worker died: reported, and the batch goes on."""
        return cls(
            path, None, {"file": path, "ok": False, "error": {"code": "worker_error", "message": message}}, message
        )


class FileTask(Protocol):
    """Picklable (it travels to the workers); `setup` runs once in each worker before its first file."""

    #: Parquet columns beside file, sha256, error and json.
    columns: tuple[str, ...]

    def setup(self) -> None: ...

    def __call__(self, path: str) -> FileOutcome: ...

    def close(self) -> None: ...
