"""Deepshield's invisible watermark: on the image, or on a few evenly spaced video frames."""

from __future__ import annotations

from pathlib import Path

from deepshield.errors import MediaError
from deepshield.labels.kinds import LABEL_KINDS, LabelEvidence
from deepshield.labels.watermark import TileWatermark, WatermarkDetection
from deepshield.media.types import MediaKind


def detect_in_file(path: Path, media_kind: MediaKind, frames: int = 6) -> WatermarkDetection | None:
    from deepshield.media import FrameSampling, open_media

    if media_kind is MediaKind.AUDIO:
        return None
    wm = TileWatermark()
    try:
        m = open_media(path)
    except MediaError:
        return None
    try:
        if media_kind is MediaKind.IMAGE:
            return wm.detect(next(iter(m.frames())).rgb)
        best: WatermarkDetection | None = None
        for fr in m.frames(FrameSampling.evenly(frames)):
            d = wm.detect(fr.rgb)
            if d.detected:
                return d
            if best is None or d.sync_score > best.sync_score:
                best = d
        return best
    finally:
        m.close()


class WatermarkKind:
    name = "watermark"

    def read(self, path: Path, media_kind: MediaKind, home: Path | None) -> LabelEvidence:
        det = detect_in_file(path, media_kind)
        if det is None:
            return LabelEvidence(self.name, None)
        report = det.to_dict()
        report.pop("best_guess", None)
        ev = LabelEvidence(self.name, report)
        if det.detected:
            ev.verified.append("1")
            if det.payload is not None:
                ev.facts["payload"] = det.payload
            ev.reasons.append(
                f"Deepshield watermark found (payload {det.payload_hex}, "
                f"designed false-positive rate {det.designed_false_positive_rate:.0e})"
            )
        return ev


LABEL_KINDS.register(WatermarkKind.name, WatermarkKind())
