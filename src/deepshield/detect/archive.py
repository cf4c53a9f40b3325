"""The scan as an archive batch's per-file task (`deepshield scan --ray`): each Ray actor builds one `Scanner`
(face analyser and detector loaded once) and writes the very JSON object `deepshield scan --json` prints."""

from __future__ import annotations

from dataclasses import dataclass, field

from deepshield.detect.pipeline import Scanner, ScanOptions
from deepshield.scale.task import FileOutcome


@dataclass
class ScanTask:
    options: ScanOptions
    columns: tuple[str, ...] = ("verdict",)
    _scanner: Scanner | None = field(default=None, repr=False)

    def setup(self) -> None:
        self._scanner = Scanner(self.options)

    def __call__(self, path: str) -> FileOutcome:
        assert self._scanner is not None, "setup() first"
        r = self._scanner.scan(path).result
        return FileOutcome(
            file=r.file,
            sha256=None if r.media is None else r.media.sha256,
            record=r.to_dict(),
            error=None if r.error is None else r.error.message,
            columns={"verdict": r.verdict},
        )

    def close(self) -> None:
        if self._scanner is not None:
            self._scanner.close()
