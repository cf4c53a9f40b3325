"""The `deepshield` command. Domain commands are registered from the modules in DOMAIN_CLIS."""

from __future__ import annotations

import importlib
import os
import sys

import typer
from rich.console import Console

from deepshield.errors import DeepshieldError

app = typer.Typer(
    name="deepshield",
    help="Deepfake defence: detect manipulated faces, label AI content, match known media, prove liveness.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = Console(stderr=True)

DOMAIN_CLIS = [
    "deepshield.cli.scan",
    "deepshield.cli.service",
    "deepshield.cli.accounts",
    "deepshield.matching.cli",
    "deepshield.cases.cli",
    "deepshield.liveness.cli",
    "deepshield.labels.cli",
    "deepshield.detect.cli",
]

for _mod in DOMAIN_CLIS:
    importlib.import_module(_mod).register(app)


def main() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        app(standalone_mode=True)
    except DeepshieldError as e:
        err_console.print(f"[red]error:[/red] {e.message}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
