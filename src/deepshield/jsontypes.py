"""JSON values as a type, so that what one domain hands another as JSON (a scan, match metadata, a screener's
finding) carries no `Any`.

Containers are read-only (`Sequence`, `Mapping`), so a `list[str]` or a `dict[str, int]` is a JSON value as it
stands; a `JsonObject` is a dict, so whoever builds one can still add keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JsonValue: TypeAlias = "str | int | float | bool | None | Sequence[JsonValue] | Mapping[str, JsonValue]"
JsonObject: TypeAlias = "dict[str, JsonValue]"
