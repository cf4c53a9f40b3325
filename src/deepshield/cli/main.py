"""The `deepshield` command. Domain commands are registered from the modules in DOMAIN_CLIS."""

from __future__ import annotations

import importlib
import os
import sys

import typer

from deepshield.errors import DeepshieldError
from deepshield.terminal import plain_console, styled

app = typer.Typer(
    name="deepshield",
    help="Deepfake defence: detect manipulated faces, label AI content, match known media, prove liveness.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err_console = plain_console(stderr=True)

DOMAIN_CLIS = [
    "deepshield.cli.scan",
    "deepshield.cli.service",
    "deepshield.cli.accounts",
    "deepshield.matching.cli",
    "deepshield.cases.cli",
    "deepshield.liveness.cli",
    "deepshield.labels.cli",
    "deepshield.consent.cli",
    "deepshield.detect.cli",
    "deepshield.detect.training.temporal.cli",
]

for _mod in DOMAIN_CLIS:
    importlib.import_module(_mod).register(app)


def main() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        app(standalone_mode=True)
    except DeepshieldError as e:
        err_console.print(styled(("error:", "red"), f" {e.message}"), highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as e:
        # Last line of defence for the file system (a folder that cannot be made, a full disk): one line, no trace.
        where = f" {e.filename}" if e.filename else ""
        err_console.print(styled(("error:", "red"), f"{where}: {e.strerror or e}"), highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        # Typer itself turns an interrupt while a command runs into a quiet exit 130; this is for one that comes
        # outside its handler (as it starts or exits).
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
