"""Running `deepshield` as a user does: a separate process, so exit codes and stderr are the real ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepshield.cli.main", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )
