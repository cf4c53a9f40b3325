"""The typed scan result: one JSON writer for the CLI, the API and the scan store, and one scan path for uploads."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from deepshield.detect.pipeline import Scanner, ScanOptions, scan_file
from deepshield.detect.temporal import shipped_temporal
from deepshield.faces.types import HeadPose
from deepshield.media import MediaKind
from deepshield.scan_result import (
    DetectorRef,
    FaceResult,
    FrameScore,
    ScannedMedia,
    ScanResult,
    Scores,
    Timing,
    TrackResult,
)
from tests.cli import run_cli
from tests.conftest import auth
from tests.foundation.media_factory import write_video
from tests.foundation.test_scan import BrightnessDetector

#: The top-level keys of a scan's JSON, in order: the public format the CLI's `--json` has always written.
OK_KEYS = [
    "file",
    "ok",
    "error",
    "media",
    "frames_sampled",
    "frame_times_s",
    "face_count",
    "faces",
    "tracks",
    "tracks_over_threshold",
    "detector",
    "detector_status",
    "scores",
    "verdict",
    "timing_s",
    "elapsed_s",
]


def _round_trips(r: ScanResult) -> None:
    text = r.to_json()
    back = ScanResult.from_json(text)
    assert back == r
    assert back.to_json() == text


def test_a_built_result_round_trips_and_keeps_the_json_shape() -> None:
    r = ScanResult(
        file="clips/a.mp4",
        media=ScannedMedia(
            "a.mp4",
            MediaKind.VIDEO,
            "mp4",
            "video/mp4",
            10,
            "ab" * 32,
            640,
            480,
            2.5,
            25.0,
            62,
            "h264",
            None,
            False,
            {"rotation": 90},
        ),
        frames_sampled=2,
        frame_times_s=(0.2, 1.4),
        faces=(
            FaceResult((1.5, 2.0, 30.0, 41.2), 0.93, HeadPose(-3.1, 2.0, 0.4), True, 5, 0.2, 0, 1.0, 0.1234),
            FaceResult((1.0, 2.0, 3.0, 4.0), 0.5, None, False, 35, 1.4, 0, 0.62, None),
        ),
        tracks=(TrackResult(0, 2, 0.2, 1.4, 0.1234),),
        tracks_over_threshold=(0,),
        detector=DetectorRef("sbi", "4", 0.5),
        scores=Scores(0.1234, (FrameScore(5, 0.2, 0.1234),), {0: 0.1234}),
        verdict="no manipulation found",
        timing_s=Timing(0.1, 0.0, 0.2, 0.05, 0.4),
        elapsed_s=0.4,
        scan_id="f" * 32,
    )
    _round_trips(r)
    d = json.loads(r.to_json())
    assert list(d) == [*OK_KEYS, "scan_id"]
    assert d["face_count"] == 2 and d["scores"]["track_scores"] == {"0": 0.1234}
    assert d["media"]["kind"] == "video" and d["faces"][0]["pose"] == {"yaw": -3.1, "pitch": 2.0, "roll": 0.4}
    failed = ScanResult.failure("x.jpg", "corrupt_media", "cannot decode", 0.01)
    _round_trips(failed)
    assert failed.to_json() == (
        '{"file": "x.jpg", "ok": false, "error": {"code": "corrupt_media", "message": "cannot decode"},'
        ' "elapsed_s": 0.01}'
    )
    _round_trips(replace(failed, elapsed_s=None, report="out/x.jpg.html"))


def test_scans_of_real_media_round_trip(shared_faces: Path, tmp_path: Path) -> None:
    scanner = Scanner(ScanOptions(frames=6), detector=BrightnessDetector())
    try:
        for path in (
            shared_faces / "real_photos" / "fr_two_people.jpg",
            shared_faces / "real_videos" / "vr_face2.mp4",
            tmp_path / "missing.jpg",
        ):
            r = scanner.scan(path).result
            _round_trips(r)
            if r.ok:
                # A video scanned beside the shipped temporal detector carries its scores before `elapsed_s`.
                with_temporal = r.media is not None and r.media.kind == "video" and shipped_temporal() is not None
                assert (r.temporal is not None) == with_temporal
                keys = [*OK_KEYS[:-1], "temporal", OK_KEYS[-1]] if with_temporal else OK_KEYS
                assert list(json.loads(r.to_json())) == keys
    finally:
        scanner.close()
    _round_trips(scan_file(shared_faces / "real_photos" / "fr_two_people.jpg", ScanOptions(use_detector=False)).result)


def _without_clock(text: str) -> str:
    """The same JSON without what differs between two runs of one scan: its timing and the service's record id."""
    return replace(ScanResult.from_json(text), timing_s=None, elapsed_s=None, scan_id=None).to_json()


def test_the_stored_api_json_is_the_cli_json(
    app_client: Any, api_key: Any, ds_home: Path, shared_faces: Path, tmp_path: Path
) -> None:
    from deepshield.detect.models import ScanRecord
    from deepshield.store.db import session_scope

    shutil.copy(shared_faces / "real_photos" / "fr_two_people.jpg", tmp_path / "p.jpg")
    cli = run_cli("scan", "p.jpg", "--json", cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr
    cli_line = cli.stdout.strip()
    with open(tmp_path / "p.jpg", "rb") as f:
        r = app_client.post("/v1/scans", files={"file": ("p.jpg", f, "image/jpeg")}, headers=auth(api_key("scan")))
    assert r.status_code == 200, r.text
    with session_scope() as s:
        rec = s.get(ScanRecord, r.json()["scan_id"])
        assert rec is not None and rec.result_json is not None
        stored = rec.result_json
    # Both are written by ScanResult.to_json, and they differ only by the clock and the record id.
    assert ScanResult.from_json(stored).to_json() == stored
    assert ScanResult.from_json(cli_line).to_json() == cli_line
    assert _without_clock(stored) == _without_clock(cli_line)
    assert json.loads(stored) == r.json()
    assert ScanResult.from_json(stored).face_count == 2


def test_upload_screening_is_a_recorded_scan_with_the_service_settings(
    ds_home: Path, api_key: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """POST /v1/uploads scans through the app's scan service: recorded, with the frame count of the settings."""
    from fastapi.testclient import TestClient

    from deepshield.api.app import create_app
    from deepshield.config import get_settings

    monkeypatch.setenv("DEEPSHIELD_SCAN_FRAMES", "5")
    get_settings.cache_clear()
    video = write_video(tmp_path / "clip.mp4", n=40)
    key = auth(api_key("scan"))
    with TestClient(create_app(get_settings())) as client:
        with open(video, "rb") as f:
            up = client.post("/v1/uploads", files={"file": ("clip.mp4", f, "video/mp4")}, headers=key)
        assert up.status_code == 200, up.text
        found = [x for x in up.json()["reasons"] if x["screener"] == "detector"]
        assert len(found) == 1 and found[0]["data"]["faces"] == 0
        scan_id = found[0]["data"]["scan_id"]
        rec = client.get(f"/v1/scans/{scan_id}", headers=key).json()
        assert rec["status"] == "done" and rec["result"]["frames_sampled"] == 5
        # A screened upload keeps no report: its face pictures would outlive the upload, which is deleted.
        assert client.get(f"/v1/scans/{scan_id}/report", headers=key).status_code == 404
        with open(video, "rb") as f:
            scan = client.post("/v1/scans", files={"file": ("clip.mp4", f, "video/mp4")}, headers=key).json()
        assert scan["frames_sampled"] == 5
