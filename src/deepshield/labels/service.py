"""Labelling and verification flows: what `deepshield label` / `verify` and the API call.

Producer mode, in this order: explicit label and watermark on the pixels/samples (re-encoding), then
the AIGC metadata with ReservedCode1, then the C2PA manifest last (any later byte change breaks it).
Platform mode never touches pixels: it adds ContentPropagator/PropagateID with ReservedCode2, keeps the
producer's fields and code, and signs a new manifest whose parent ingredient is the file as received.
Nothing here removes a label: existing AIGC fields are carried over, manifests are kept as ingredients.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

from deepshield.jsontypes import JsonObject
from deepshield.labels import aigc as aigc_mod
from deepshield.labels import c2pa_manifest, containers, media_io
from deepshield.labels import visible as vis
from deepshield.labels.aigc import DISPLAY, AigcLabel
from deepshield.labels.consent import ConsentState, check_with_revocation, parse_credential
from deepshield.labels.errors import LabelError, UnsupportedLabelFormat
from deepshield.labels.keys import load_keys
from deepshield.labels.watermark import TileWatermark, payload_for
from deepshield.media.sniff import sniff_file
from deepshield.media.types import MediaKind, RGBImage

VIDEO_LABEL_SECONDS = 2.5  # >= 2 s required; a margin for frame timing
#: The AIGC metadata key naming the consent credential of the person shown (beside GB 45438's own fields).
CONSENT_ID_FIELD = "ConsentID"


@dataclass
class LabelOptions:
    producer: str = "deepshield"
    produce_id: str | None = None
    label: str = "1"
    visible: bool = True
    text: str = vis.DEFAULT_TEXT
    position: str = vis.Position.BOTTOM_RIGHT.value
    watermark: bool = True
    metadata: bool = True
    c2pa: bool = True
    xmp_form: str = "element"
    audio_notice: Path | None = None  # a spoken notice to use instead of the short-long-short-short cue
    #: a consent credential (`deepshield consent`): its id goes into the AIGC metadata (`ConsentID`) and the
    #: token into a C2PA assertion of its own, so `verify` can report the depicted person's consent
    consent: str | None = None
    # platform mode
    propagator: str | None = None
    propagate_id: str | None = None


class VisibleLabel(TypedDict, total=False):
    """Where the explicit label went: a box on an image or on the video's first seconds, or the audio's cue."""

    x: int
    y: int
    width: int
    height: int
    text_height: int
    text: str
    seconds: float  # video: the label is on the frames before this time
    notice: str  # audio: the spoken notice file used
    cue: str  # audio: the rhythm cue used


def _box(box: vis.VisibleLabelBox) -> VisibleLabel:
    return VisibleLabel(x=box.x, y=box.y, width=box.width, height=box.height, text_height=box.text_height)


@dataclass
class LabelResult:
    path: str
    kind: str
    format: str
    mode: str
    aigc: dict[str, str] | None = None
    watermark_payload: str | None = None
    visible: VisibleLabel | None = None
    c2pa: str | None = None
    steps: list[str] = field(default_factory=list)

    def to_dict(self) -> JsonObject:
        return asdict(self)


def _kind(path: Path) -> tuple[MediaKind, str]:
    s = sniff_file(path)
    if s is None:
        raise UnsupportedLabelFormat(f"{path.name}: not a supported image, video or audio file")
    return s.kind, s.format


def label_file(src: Path, dst: Path, opts: LabelOptions | None = None, home: Path | None = None) -> LabelResult:
    """Label `src` into `dst`; `home` is the data directory holding the keys (default: settings)."""
    opts = opts or LabelOptions()
    if opts.propagator:
        _validate_options(opts)
        return _platform_label(src, dst, opts, home)
    _validate_options(opts)
    keys = load_keys(home) if (opts.metadata or opts.c2pa) else None
    kind, fmt = _kind(src)
    produce_id = opts.produce_id or uuid.uuid4().hex
    res = LabelResult(str(dst), kind.value, fmt, "producer")
    with tempfile.TemporaryDirectory() as td:
        work = Path(td) / ("stage1" + dst.suffix)
        payload = payload_for(produce_id)
        if kind is MediaKind.IMAGE:
            rgb, fmt = media_io.load_image(src)
            if opts.visible:
                rgb, box = vis.render_image_label(rgb, opts.text, opts.position)
                res.visible = _box(box)
                res.visible["text"] = opts.text
                res.steps.append("visible text label")
            if opts.watermark:
                rgb = TileWatermark().embed(rgb, payload)
                res.watermark_payload = f"{payload:016x}"
                res.steps.append("invisible watermark")
            media_io.save_image(rgb, work, fmt)
        elif kind is MediaKind.VIDEO:
            wm = TileWatermark() if opts.watermark else None
            info: VisibleLabel = {}

            def per_frame(rgb: RGBImage, t: float) -> RGBImage:
                if opts.visible and t < VIDEO_LABEL_SECONDS:
                    rgb, box = vis.render_image_label(rgb, opts.text, opts.position)
                    info.update(_box(box))
                if wm is not None:
                    rgb = wm.embed(rgb, payload, informed=False)
                return rgb

            media_io.rewrite_video(src, work, per_frame)
            fmt = "mp4"
            if opts.visible:
                info["text"], info["seconds"] = opts.text, VIDEO_LABEL_SECONDS
                res.visible = info
                res.steps.append(f"visible label on the first {VIDEO_LABEL_SECONDS} s")
            if wm is not None:
                res.watermark_payload = f"{payload:016x}"
                res.steps.append("invisible watermark on every frame")
        else:
            if opts.visible:
                if opts.audio_notice is not None:
                    media_io.rewrite_audio(src, work, fmt, vis.notice_from_file(opts.audio_notice))
                    res.visible = {"notice": opts.audio_notice.name}
                    res.steps.append("spoken notice at the start")
                else:
                    media_io.rewrite_audio(src, work, fmt, vis.ai_rhythm_cue)
                    res.visible = {"cue": "short-long-short-short"}
                    res.steps.append("audible AI cue at the start")
            else:
                shutil.copyfile(src, work)
        res.format = fmt
        current = work
        aigc_text: str | None = None
        consent = _consent_assertion(opts.consent)
        if opts.metadata and keys is not None:
            label = AigcLabel(Label=opts.label, ContentProducer=opts.producer, ProduceID=produce_id)
            if consent:
                label.extra[CONSENT_ID_FIELD] = consent["credential_id"]
            aigc_mod.sign_producer(label, keys.aigc_key)
            stage2 = Path(td) / ("stage2" + dst.suffix)
            containers.write_aigc_json(current, stage2, label.to_json(), opts.xmp_form)  # type: ignore[arg-type]
            aigc_text = label.to_json()
            _check_metadata(stage2, aigc_text)
            current = stage2
            res.aigc = json.loads(label.to_json())
            res.steps.append("AIGC metadata with ReservedCode1")
        if opts.c2pa and keys is not None:
            stage3 = Path(td) / ("stage3" + dst.suffix)
            c2pa_manifest.sign_file(
                current, stage3, keys, opts.producer, json.dumps(res.aigc) if res.aigc else None, consent=consent
            )
            _check_signed(stage3, keys.ca_pem.decode(), aigc_text)
            current = stage3
            res.c2pa = "signed"
            res.steps.append("C2PA manifest (created, trainedAlgorithmicMedia)")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(current, dst)
    _ledger(res, home)
    return res


def _consent_assertion(token: str | None) -> dict[str, str] | None:
    if not token:
        return None
    claims, _, _ = parse_credential(token)
    return {"credential_id": claims.id, "credential": token.strip()}


def _validate_options(opts: LabelOptions) -> None:
    """Bad options are the caller's mistake: a typed error before any work, never a crash halfway."""
    if opts.consent is not None:
        try:
            parse_credential(opts.consent)
        except ValueError as e:
            raise LabelError(f"--consent: {e}") from None
    vis.validate_text(opts.text)
    if opts.position not in {p.value for p in vis.Position}:
        raise LabelError(
            f"unknown label position {opts.position!r}; use one of " + ", ".join(p.value for p in vis.Position)
        )
    if opts.label not in DISPLAY:
        raise LabelError('AIGC Label must be "1" (AI-generated), "2" (possibly) or "3" (suspected)')
    if opts.xmp_form not in ("element", "attribute"):
        raise LabelError("xmp_form must be 'element' or 'attribute'")
    for name in ("producer", "produce_id", "propagator", "propagate_id"):
        v = getattr(opts, name)
        if v is not None and not all(32 <= ord(c) < 127 for c in v):
            raise LabelError(f"{name} must be printable ASCII (GB 45438 metadata values)")


def _platform_label(src: Path, dst: Path, opts: LabelOptions, home: Path | None) -> LabelResult:
    keys = load_keys(home)
    kind, fmt = _kind(src)
    res = LabelResult(str(dst), kind.value, fmt, "platform")
    raw, _where = containers.read_aigc_json(src)
    if raw is not None:
        try:
            label = AigcLabel.from_json(raw)
        except LabelError:
            label = AigcLabel(Label=opts.label)
            label.extra["OriginalAIGC"] = "".join(c for c in raw if 32 <= ord(c) < 127)[:2000]
    else:
        label = AigcLabel(Label=opts.label)
    label.ContentPropagator = opts.propagator or ""
    label.PropagateID = opts.propagate_id or uuid.uuid4().hex
    aigc_mod.sign_propagator(label, keys.aigc_key)
    with tempfile.TemporaryDirectory() as td:
        stage = Path(td) / ("meta" + dst.suffix)
        containers.write_aigc_json(src, stage, label.to_json(), opts.xmp_form)  # type: ignore[arg-type]
        _check_metadata(stage, label.to_json())
        res.steps.append("AIGC metadata: ContentPropagator/PropagateID with ReservedCode2")
        current = stage
        if opts.c2pa:
            signed = Path(td) / ("signed" + dst.suffix)
            carried = c2pa_manifest.verify_file(src).consent  # the producer's consent assertion travels on
            c2pa_manifest.sign_file(
                stage, signed, keys, opts.propagator or "platform", label.to_json(), parent=src, consent=carried
            )
            _check_signed(signed, keys.ca_pem.decode(), label.to_json())
            current = signed
            res.c2pa = "re-signed (producer's file kept as parent ingredient)"
            res.steps.append("C2PA manifest re-signed")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(current, dst)
    res.aigc = json.loads(label.to_json())
    _ledger(res, home)
    return res


def _check_metadata(path: Path, expected: str) -> None:
    """Read the label back after writing it: a writer bug must fail loudly, not ship an unlabelled file."""
    got, _ = containers.read_aigc_json(path)
    if got != expected:
        raise LabelError("the AIGC label did not read back after writing it; file not labelled")


def _check_signed(path: Path, anchors: str, aigc_json: str | None) -> None:
    """After signing, the manifest must verify and the metadata written before it must still be there."""
    rep = c2pa_manifest.verify_file(path, anchors=anchors)
    if rep.state is not c2pa_manifest.C2paState.TRUSTED:
        raise LabelError(f"the signed C2PA manifest does not verify: {rep.summary}")
    if aigc_json is not None:
        _check_metadata(path, aigc_json)


def _ledger(res: LabelResult, home: Path | None) -> None:
    """Append-only record of issued labels (ProduceID/PropagateID -> watermark payload)."""
    try:
        from deepshield.config import get_settings

        d = (home or get_settings().home) / "labels"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "issued.jsonl", "a") as f:
            f.write(json.dumps({"mode": res.mode, "aigc": res.aigc, "watermark": res.watermark_payload}) + "\n")
    except OSError:
        pass


# ------------------------------------------------------------------------------------------- verify
@dataclass
class VerifyReport:
    path: str
    kind: str
    format: str
    metadata: JsonObject | None
    c2pa: JsonObject
    watermark: JsonObject | None
    agreement: list[str]
    conflicts: list[str]
    decision: str | None  # "AI-generated" / "possibly AI-generated" / "suspected AI-generated" / None
    reasons: list[str]
    labels_found: list[str] = field(default_factory=list)  # kinds with something present
    #: the depicted person's consent: state (valid, expired, revoked, unknown, signature_invalid, malformed,
    #: absent), reason, credential id and claims
    consent: JsonObject = field(default_factory=lambda: {"state": "absent"})

    def to_dict(self) -> JsonObject:
        return asdict(self)


def verify_file(path: Path, watermark: bool = True, home: Path | None = None) -> VerifyReport:
    """Run every registered label kind, cross-check what they say, and decide what to display."""
    from deepshield.labels.kinds import label_kinds

    media_kind, fmt = _kind(path)
    found = {k.name: k.read(path, media_kind, home) for k in label_kinds() if watermark or k.name != "watermark"}
    reasons = [r for ev in found.values() for r in ev.reasons]
    conflicts = [c for ev in found.values() for c in ev.conflicts]
    levels = [v for ev in found.values() for v in ev.verified]
    weak = [v for ev in found.values() for v in ev.claimed]
    agreement: list[str] = []

    label: AigcLabel | None = found["metadata"].facts.get("label") if "metadata" in found else None
    payload = found["watermark"].facts.get("payload") if "watermark" in found else None
    manifest_aigc = found["c2pa"].facts.get("aigc") if "c2pa" in found else None
    if label is not None and payload is not None and label.ProduceID:
        if payload_for(label.ProduceID) == payload:
            agreement.append("watermark payload matches the metadata ProduceID")
        else:
            conflicts.append("watermark payload does not match the metadata ProduceID")
    if label is not None and manifest_aigc:
        same = all(str(manifest_aigc.get(k, "")) == getattr(label, k) for k in aigc_mod.PRODUCER_FIELDS)
        (agreement if same else conflicts).append(
            "C2PA manifest and AIGC metadata " + ("agree on the producer fields" if same else "disagree")
        )

    decision: str | None = None
    if levels:
        decision = DISPLAY[min(levels)]
    elif weak:
        decision = DISPLAY["2"] if "1" in weak or "2" in weak else DISPLAY["3"]
    if not reasons and not conflicts:
        reasons.append("no AI label found")
    c2pa_report = found["c2pa"].report if "c2pa" in found else None
    consent = consent_report(c2pa_report, label, home)
    if consent.get("conflict"):
        conflicts.append(str(consent["conflict"]))
    return VerifyReport(
        str(path),
        media_kind.value,
        fmt,
        found["metadata"].report if "metadata" in found else None,
        c2pa_report or {"state": "absent"},
        found["watermark"].report if "watermark" in found else None,
        agreement,
        conflicts,
        decision,
        reasons,
        [
            n
            for n, ev in found.items()
            if ev.report is not None
            and not (n == "c2pa" and ev.report.get("state") == "absent")
            and not (n == "watermark" and not ev.report.get("detected"))
        ],
        consent,
    )


def consent_report(c2pa_report: JsonObject | None, label: AigcLabel | None, home: Path | None = None) -> JsonObject:
    """The consent state of a labelled file: the credential in the C2PA assertion, checked offline against the
    trusted keys and then against the registered revocation sources; the AIGC `ConsentID` must name the same."""
    from deepshield.labels.keys import trusted_aigc_keys

    asserted = c2pa_report.get("consent") if c2pa_report else None
    meta_id = label.extra.get(CONSENT_ID_FIELD) if label is not None else None
    if not isinstance(asserted, dict) or not isinstance(asserted.get("credential"), str):
        if meta_id:
            return {
                "state": ConsentState.UNKNOWN.value,
                "credential_id": meta_id,
                "reason": "the metadata names a consent credential but the file carries no signed credential",
            }
        return {"state": "absent"}
    check = check_with_revocation(asserted["credential"], trusted_aigc_keys(home))
    out: JsonObject = check.to_dict()
    out["credential_id"] = check.claims.id if check.claims else asserted.get("credential_id")
    if meta_id and check.claims and meta_id != check.claims.id:
        out["conflict"] = "AIGC ConsentID and the C2PA consent credential name different credentials"
    return out
