"""Running `deepshield` as a user does: a separate process, so exit codes and stderr are the real ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deepshield.cli.main", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def cli_api_key(home: Path, *scopes: str) -> str:
    """A key with `scopes`, made by `deepshield apikey create` against the data directory `home` (a served app's)."""
    import os

    env = {**os.environ, "DEEPSHIELD_HOME": str(home)}
    env.pop("DATABASE_URL", None)
    args = [a for s in scopes for a in ("--scope", s)]
    out = subprocess.run(
        [sys.executable, "-m", "deepshield.cli.main", "apikey", "create", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]
