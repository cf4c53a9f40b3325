"""Typed errors: every bad input maps to one of these, with a one-line message a person can act on.

The CLI prints `error: <message>` and exits non-zero; the API answers 4xx with `{"error": code, "detail": message}`.
"""

from __future__ import annotations


class DeepshieldError(Exception):
    """Base of every expected failure. `code` is stable for machines, the message is for people."""

    code = "error"
    http_status = 400
    #: seconds for the API's `Retry-After` header (rate limits, lockouts, a step asked for early)
    retry_after_s: int | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class MediaError(DeepshieldError):
    code = "media_error"
    http_status = 422


class MediaNotFound(MediaError):
    code = "not_found"
    http_status = 404


class UnsupportedMediaType(MediaError):
    code = "unsupported_media_type"
    http_status = 415


class CorruptMedia(MediaError):
    code = "corrupt_media"
    http_status = 422


class MediaTooLarge(MediaError):
    """File size, pixel count, duration or frame count beyond the configured limit."""

    code = "media_too_large"
    http_status = 413


class DecodeTimeout(MediaError):
    code = "decode_timeout"
    http_status = 422


class NotConfigured(DeepshieldError):
    code = "not_configured"
    http_status = 503
