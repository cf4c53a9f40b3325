"""The bounds on numbers from clients: what every database column holds.

Integers from clients are bounded to PostgreSQL's `integer` (SQLite cannot bind more than 64 bits and raised
OverflowError, a 500): the API declares `le=DB_INT_MAX` on every int parameter and field, and numbers in
free-form JSON bodies (the HMA wire format in `matching.hma`) are read with `body_int` / `body_float`.
"""

from __future__ import annotations

import math
import re

from deepshield.errors import DeepshieldError

DB_INT_MAX = 2**31 - 1
#: The largest value of a 64-bit column (`BigInteger`: a Unix time such as `disable_until_ts`).
DB_BIGINT_MAX = 2**63 - 1


class InvalidNumber(DeepshieldError):
    code = "invalid_number"
    http_status = 422


def body_int(value: object, name: str, lo: int = 0, hi: int = DB_INT_MAX) -> int:
    """An integer from a JSON body (a JSON integer, an integral number or a string of digits) in [lo, hi]."""
    if (
        isinstance(value, float)
        and math.isfinite(value)
        and value.is_integer()
        or isinstance(value, str)
        and re.fullmatch(r"\s*[+-]?\d{1,20}\s*", value) is not None
    ):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidNumber(f"{name} must be an integer from {lo} to {hi}")
    return value


def body_float(value: object, name: str, lo: float, hi: float) -> float:
    """A finite number from a JSON body in [lo, hi] (1e400 parses as infinity: refused, not ignored)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= float(value) <= hi:
        raise InvalidNumber(f"{name} must be a number from {lo:g} to {hi:g}")
    return float(value)


#: Text a client sends that the services require to be non-blank (a case decision's or appeal's reason, a consent
#: request's provider and purpose) must hold a character Python's `str.strip()` keeps, as the services check. Not
#: `\S`: JSON Schema (ECMA), pydantic (Rust) and Python disagree on what it matches (U+001C-U+001F, U+0085), so a
#: client following the published schema could send text that passes validation and is then refused.
HAS_TEXT = r"[^\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
