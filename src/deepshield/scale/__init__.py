"""Archive-scale batches: one per-file task (a scan, the bank hashes) run over a lazily walked stream of paths on a
Ray cluster, results written as they finish (JSON lines or Parquet parts) and a batch resumable from its output.

It knows nothing of scanning or hashing: a domain hands it a picklable `FileTask` (`detect.archive.ScanTask`,
`matching.archive.HashTask`), so the same engine serves every per-file job.
"""

from deepshield.scale.outputs import ResultSink, done_files, open_sink
from deepshield.scale.paths import iter_files
from deepshield.scale.task import FileOutcome, FileTask

__all__ = ["FileOutcome", "FileTask", "ResultSink", "done_files", "iter_files", "open_sink"]
