"""C2PA manifests: Trusted counts as proof, Valid-untrusted as a claim, Invalid as a conflict."""

from __future__ import annotations

from pathlib import Path

from deepshield.labels import c2pa_manifest
from deepshield.labels.c2pa_manifest import C2paState
from deepshield.labels.keys import trust_anchors_pem
from deepshield.labels.kinds import LABEL_KINDS, LabelEvidence
from deepshield.media.types import MediaKind


class C2paKind:
    name = "c2pa"

    def read(self, path: Path, media_kind: MediaKind, home: Path | None) -> LabelEvidence:
        rep = c2pa_manifest.verify_file(path, anchors=trust_anchors_pem(home))
        ev = LabelEvidence(self.name, rep.to_dict())
        ai_source = (rep.digital_source_type or "").endswith("trainedAlgorithmicMedia")
        if rep.aigc:
            ev.facts["aigc"] = rep.aigc
        if rep.state in (C2paState.TRUSTED, C2paState.VALID_UNTRUSTED):
            bucket = ev.verified if rep.state is C2paState.TRUSTED else ev.claimed
            if ai_source:
                bucket.append("1")
                ev.reasons.append(f"C2PA manifest {rep.state.value}: created by a trained algorithm")
            elif rep.aigc:
                bucket.append(str(rep.aigc.get("Label", "2")))
                ev.reasons.append(f"C2PA manifest {rep.state.value} asserting an AIGC label")
        elif rep.state is C2paState.INVALID:
            ev.conflicts.append("C2PA manifest Invalid: " + "; ".join(f.plain for f in rep.failures))
            if ai_source:
                ev.claimed.append("3")
        return ev


LABEL_KINDS.register(C2paKind.name, C2paKind())
