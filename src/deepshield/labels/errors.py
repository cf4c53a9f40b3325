"""Typed errors of the labels domain."""

from __future__ import annotations

from deepshield.errors import DeepshieldError, NotConfigured


class LabelError(DeepshieldError):
    code = "label_error"
    http_status = 422


class LabelTextError(LabelError):
    """A configured visible label that does not say what the law requires."""

    code = "label_text_invalid"


class KeysMissing(NotConfigured):
    code = "keys_missing"

    def __init__(self, message: str = "signing keys are missing: run `deepshield keys init` first") -> None:
        super().__init__(message)


class KeyFileError(NotConfigured):
    """A key file that is missing or holds something other than the key asked for."""

    code = "key_file_invalid"


class UnsupportedLabelFormat(LabelError):
    code = "unsupported_label_format"
    http_status = 415
