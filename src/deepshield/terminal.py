"""Console output of every command.

It lives below the domains (not in `deepshield.cli`, which loads their commands) so that a domain's `cli.py` can
use it without importing the package that imports it.

Markup is off: what a command prints (file names, error messages, fields read from a file that may be hostile)
appears exactly as it is, so `bad [red]x.jpg` or a crafted label cannot restyle or hide text. Colour comes only
from `styled`, which never parses its arguments.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text


def plain_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, markup=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """Text with coloured words: `styled(("FAILED", "red"), f" {path}: {reason}")`."""
    return Text.assemble(*parts)


def failed_line(path: object, reason: str) -> Text:
    """The line for a file a command could not process (scan, match, bank add, evaluate)."""
    return styled(("FAILED", "red"), f" {path}: {reason}")
