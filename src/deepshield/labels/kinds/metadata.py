"""GB 45438 `AIGC` metadata: found in the container, codes checked against the trusted Ed25519 keys."""

from __future__ import annotations

import json
from pathlib import Path

from deepshield.labels import aigc as aigc_mod
from deepshield.labels import containers
from deepshield.labels.aigc import DISPLAY, AigcLabel, CodeStatus
from deepshield.labels.errors import LabelError
from deepshield.labels.keys import trusted_aigc_keys
from deepshield.labels.kinds import LABEL_KINDS, LabelEvidence
from deepshield.media.types import MediaKind


class MetadataKind:
    name = "metadata"

    def read(self, path: Path, media_kind: MediaKind, home: Path | None) -> LabelEvidence:
        ev = LabelEvidence(self.name, None)
        raw, where = containers.read_aigc_json(path)
        if raw is None:
            return ev
        try:
            label = AigcLabel.from_json(raw)
        except LabelError as e:
            ev.report = {"found_in": where, "error": e.message, "raw": raw[:500]}
            ev.claimed.append("2")
            ev.reasons.append("an AIGC label is present but malformed")
            return ev
        c1, c2 = aigc_mod.verify_codes(label, trusted_aigc_keys(home))
        ev.report = {
            "found_in": where,
            "aigc": json.loads(label.to_json()),
            "ReservedCode1": c1.value,
            "ReservedCode2": c2.value,
            "display": DISPLAY.get(label.Label),
        }
        ev.facts["label"] = label
        if CodeStatus.INVALID in (c1, c2):
            ev.conflicts.append("AIGC metadata was altered after signing (a signature does not match)")
        if c1 is CodeStatus.VALID or c2 is CodeStatus.VALID:
            ev.verified.append(label.Label)
            ev.reasons.append(f"AIGC metadata (Label {label.Label}) with a valid signature")
        else:
            ev.claimed.append(label.Label)
            ev.reasons.append(
                f"AIGC metadata (Label {label.Label}) present but unverified: "
                f"ReservedCode1 {c1.value}, ReservedCode2 {c2.value}"
            )
        return ev


LABEL_KINDS.register(MetadataKind.name, MetadataKind())
