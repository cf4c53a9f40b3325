"""Labelling and verification end to end: C2PA states after each write, tampering, explicit labels, platform
mode, CLI and API."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

from deepshield.labels.c2pa_manifest import C2paState
from deepshield.labels.c2pa_manifest import verify_file as c2pa_verify
from deepshield.labels.containers import read_aigc_json, write_aigc_json
from deepshield.labels.service import LabelOptions, label_file, verify_file
from tests.labels.helpers import ffprobe_json

if TYPE_CHECKING:
    from fastapi.testclient import TestClient


def _exif_aigc(path: Path) -> dict:
    """The label as exiftool (an independent reader) sees it; empty when it finds none."""
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool absent")
    out = json.loads(subprocess.run(["exiftool", "-j", "-G1", str(path)], capture_output=True, text=True).stdout)[0]
    v = out.get("XMP-TC260:Aigc")
    return json.loads(v) if v else {}


@pytest.mark.parametrize("name", ["a.jpg", "a.png", "a.webp", "a.wav", "a.mp3"])
def test_producer_label_all_labels_verify(keys_home: Path, media_dir: Path, tmp_path: Path, name: str) -> None:
    dst = tmp_path / name
    res = label_file(media_dir / name, dst, LabelOptions(producer="acme-gen", produce_id="pid-1"), keys_home)
    assert res.c2pa == "signed"
    rep = verify_file(dst, home=keys_home)
    assert rep.decision == "AI-generated"
    assert rep.c2pa["state"] == "Trusted"
    assert str(rep.c2pa["digital_source_type"]).endswith("trainedAlgorithmicMedia")
    actions = rep.c2pa["actions"]
    assert isinstance(actions, list) and "c2pa.created" in actions
    assert rep.metadata and rep.metadata["ReservedCode1"] == "valid"
    aigc = rep.metadata["aigc"]
    assert isinstance(aigc, dict) and aigc["ProduceID"] == "pid-1"
    assert not rep.conflicts
    if name.endswith((".jpg", ".png", ".webp")):
        assert _exif_aigc(dst)["ProduceID"] == "pid-1"  # the independent reader sees the label after signing
        assert rep.watermark and rep.watermark["detected"]
        assert "watermark payload matches the metadata ProduceID" in rep.agreement
        assert rep.labels_found == ["metadata", "c2pa", "watermark"]
    # without our CA as trust anchor the same manifest is intact but untrusted
    assert c2pa_verify(dst, anchors=None, use_project_ca=False).state is C2paState.VALID_UNTRUSTED


def test_pixel_edit_makes_manifest_invalid_and_names_the_check(
    keys_home: Path, media_dir: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "a.png"
    label_file(media_dir / "a.png", dst, LabelOptions(watermark=False), keys_home)
    edited = tmp_path / "edited.png"
    data = bytearray(dst.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 40] ^= 0x01  # one bit of compressed pixel data
    edited.write_bytes(bytes(data))
    rep = c2pa_verify(edited, anchors=(keys_home / "keys" / "c2pa_ca.pem").read_text())
    assert rep.state is C2paState.INVALID
    assert any(f.code == "assertion.dataHash.mismatch" for f in rep.failures)
    assert "changed after it was signed" in rep.summary
    full = verify_file(edited, home=keys_home)
    assert any("C2PA manifest Invalid" in c for c in full.conflicts)


def test_stripped_manifest_reported_absent_but_metadata_still_read(
    keys_home: Path, media_dir: Path, tmp_path: Path
) -> None:
    dst = tmp_path / "a.jpg"
    label_file(media_dir / "a.jpg", dst, LabelOptions(), keys_home)
    stripped = tmp_path / "reencoded.jpg"
    Image.open(dst).save(stripped, quality=90)  # a re-encode drops every marker
    rep = verify_file(stripped, home=keys_home)
    assert rep.c2pa["state"] == "absent"
    assert rep.metadata is None
    assert rep.watermark and rep.watermark["detected"]  # the watermark is what survives
    assert rep.decision == "AI-generated"


def test_forged_aigc_block_is_unverified_not_valid(keys_home: Path, media_dir: Path, tmp_path: Path) -> None:
    dst = tmp_path / "forged.jpg"
    forged = (
        '{"Label":"1","ContentProducer":"acme-gen","ProduceID":"x","ReservedCode1":"ds-ed25519:0011223344556677:AAAA"}'
    )
    write_aigc_json(media_dir / "a.jpg", dst, forged)
    rep = verify_file(dst, watermark=False, home=keys_home)
    assert rep.metadata and rep.metadata["ReservedCode1"] != "valid"
    assert rep.decision == "possibly AI-generated"  # a claim without proof is not shown as verified
    assert any("unverified" in r for r in rep.reasons)
    # a genuine label whose producer field is then edited: the signature check fails
    good = tmp_path / "good.jpg"
    label_file(media_dir / "a.jpg", good, LabelOptions(c2pa=False, watermark=False, visible=False), keys_home)
    raw = read_aigc_json(good)[0] or ""
    tampered = tmp_path / "tampered.jpg"
    write_aigc_json(good, tampered, raw.replace('"Label":"1"', '"Label":"3"'))
    rep2 = verify_file(tampered, watermark=False, home=keys_home)
    assert rep2.metadata and rep2.metadata["ReservedCode1"] == "invalid"
    assert any("altered after signing" in c for c in rep2.conflicts)


def test_unlabelled_file_has_no_decision(keys_home: Path, media_dir: Path) -> None:
    rep = verify_file(media_dir / "a.jpg", home=keys_home)
    assert rep.decision is None and rep.metadata is None and rep.c2pa["state"] == "absent"
    assert rep.labels_found == []
    assert rep.watermark is not None and not rep.watermark["detected"]


def test_platform_mode_keeps_producer_fields_and_resigns(keys_home: Path, media_dir: Path, tmp_path: Path) -> None:
    prod = tmp_path / "p.jpg"
    label_file(media_dir / "a.jpg", prod, LabelOptions(producer="acme-gen", produce_id="pid-9"), keys_home)
    before = json.loads(read_aigc_json(prod)[0] or "")
    plat = tmp_path / "plat.jpg"
    label_file(prod, plat, LabelOptions(propagator="video-site", propagate_id="share-7"), keys_home)
    assert np.array_equal(np.array(Image.open(prod)), np.array(Image.open(plat)))  # pixels untouched
    rep = verify_file(plat, home=keys_home)
    a = rep.metadata["aigc"] if rep.metadata else {}
    assert isinstance(a, dict)
    for k in ("Label", "ContentProducer", "ProduceID", "ReservedCode1"):
        assert a[k] == before[k]
    assert a["ContentPropagator"] == "video-site" and a["PropagateID"] == "share-7"
    assert rep.metadata and rep.metadata["ReservedCode1"] == "valid" and rep.metadata["ReservedCode2"] == "valid"
    assert rep.c2pa["state"] == "Trusted"
    assert _exif_aigc(plat)["PropagateID"] == "share-7"


def test_visible_image_label_size_and_text_rule(tmp_path: Path) -> None:
    from deepshield.labels.errors import LabelTextError
    from deepshield.labels.visible import render_image_label, validate_text
    from tests.labels.helpers import natural_image

    for t in ("AI生成", "人工智能合成", "AI-generated 合成"):
        validate_text(t)
    for bad in ("generated", "AI", "合成"):
        with pytest.raises(LabelTextError):
            validate_text(bad)
    for bg in (0, 255):
        img = np.full((400, 600, 3), bg, np.uint8)
        out, box = render_image_label(img, "AI生成", "top-left")
        assert box.text_height >= 0.05 * 400
        region = out[box.y : box.y + box.height, box.x : box.x + box.width].astype(int)
        assert region.max() - region.min() > 150  # white text on a dark plate on white or black
        assert box.x < 50 and box.y < 50
    out, box = render_image_label(natural_image(), "AI生成", "bottom-right")
    assert box.x + box.width > 450 and box.y + box.height > 330


def test_video_label_two_seconds_audio_kept_and_cue(keys_home: Path, media_dir: Path, tmp_path: Path) -> None:
    import av

    dst = tmp_path / "v.mp4"
    res = label_file(media_dir / "v.mp4", dst, LabelOptions(watermark=False, position="top-left"), keys_home)
    box = res.visible or {}
    streams = ffprobe_json(dst, "stream=codec_type:format_tags")
    assert sorted(s["codec_type"] for s in streams["streams"]) == ["audio", "video"]
    assert json.loads(streams["format"]["tags"]["AIGC"])["Label"] == "1"  # ffprobe reads the MP4 key
    diffs: dict[float, float] = {}
    with av.open(str(media_dir / "v.mp4")) as a, av.open(str(dst)) as b:
        fa = {round(float(f.time), 2): f.to_ndarray(format="rgb24") for f in a.decode(video=0)}
        fb = {round(float(f.time), 2): f.to_ndarray(format="rgb24") for f in b.decode(video=0)}
    for t in sorted(fa):
        if t in fb:
            ys, xs = slice(box["y"], box["y"] + box["height"]), slice(box["x"], box["x"] + box["width"])
            diffs[t] = float(np.abs(fa[t][ys, xs].astype(int) - fb[t][ys, xs].astype(int)).mean())
    assert all(d > 20 for t, d in diffs.items() if t <= 2.0)  # label on every frame of the first 2 s
    assert any(d < 10 for t, d in diffs.items() if t >= 2.6)  # and gone later
    assert verify_file(dst, watermark=False, home=keys_home).c2pa["state"] == "Trusted"


def test_audio_cue_short_long_short_short(keys_home: Path, media_dir: Path, tmp_path: Path) -> None:
    import wave

    from deepshield.labels.visible import cue_pattern

    dst = tmp_path / "a.wav"
    label_file(media_dir / "a.wav", dst, LabelOptions(c2pa=False), keys_home)
    with wave.open(str(dst)) as w:
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768
        nch = w.getnchannels()
    x = x.reshape(-1, nch)[:, 0]
    d = cue_pattern(x[: int(sr * 1.2)], sr)
    assert len(d) >= 4
    s, long_, s2, s3 = d[:4]
    assert long_ > 2 * s and long_ > 2 * s2 and long_ > 2 * s3
    assert abs(s - s2) < 0.03 and abs(s2 - s3) < 0.03


def test_cli_label_and_verify(keys_home: Path, media_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from deepshield.cli.main import app

    r = CliRunner()
    dst = tmp_path / "out.png"
    res = r.invoke(app, ["label", str(media_dir / "a.png"), "-o", str(dst), "--produce-id", "cli-1", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["aigc"]["ProduceID"] == "cli-1"
    res = r.invoke(app, ["verify", str(dst), "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["decision"] == "AI-generated" and rep["c2pa"]["state"] == "Trusted"
    bad = r.invoke(app, ["label", str(media_dir / "a.png"), "-o", str(tmp_path / "x.png"), "--text", "fake"])
    assert bad.exit_code != 0


def test_cli_verify_prints_a_crafted_label_as_text_not_markup(keys_home: Path, media_dir: Path, tmp_path: Path) -> None:
    """A label's fields come from the file: rich markup in them must print literally, never restyle the report."""
    from typer.testing import CliRunner

    from deepshield.cli.main import app

    r = CliRunner()
    dst = tmp_path / "out.png"
    crafted = "[green]agree[/green]"
    res = r.invoke(app, ["label", str(media_dir / "a.png"), "-o", str(dst), "--producer", crafted])
    assert res.exit_code == 0, res.output
    res = r.invoke(app, ["verify", str(dst), "--no-watermark"])
    assert res.exit_code == 0, res.output
    assert f"producer {crafted!r}" in res.stdout


def test_api_label_and_verify(app_client: TestClient, api_key: Callable[..., str], media_dir: Path) -> None:
    from deepshield.config import get_settings
    from deepshield.labels.keys import init_keys
    from tests.conftest import auth

    init_keys(get_settings().home)
    key = api_key("label")
    with open(media_dir / "a.jpg", "rb") as f:
        r = app_client.post(
            "/v1/labels",
            headers=auth(key),
            files={"file": ("a.jpg", f, "image/jpeg")},
            data={"producer": "api-gen", "produce_id": "api-1"},
        )
    assert r.status_code == 200, r.text
    meta = json.loads(base64.b64decode(r.headers["X-Deepshield-Label"]))
    assert meta["aigc"]["ProduceID"] == "api-1"
    labelled = r.content
    r = app_client.post("/v1/labels/verify", headers=auth(key), files={"file": ("l.jpg", labelled, "image/jpeg")})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["decision"] == "AI-generated" and rep["c2pa"]["state"] == "Trusted"
    assert rep["metadata"]["ReservedCode1"] == "valid"
    r = app_client.post(
        "/v1/labels/verify", headers=auth(api_key("scan")), files={"file": ("l.jpg", labelled, "image/jpeg")}
    )
    assert r.status_code == 403
    r = app_client.post("/v1/labels", headers=auth(key), files={"file": ("x.txt", b"hello", "text/plain")})
    assert 400 <= r.status_code < 500 and "error" in r.json()


def test_video_frames_carry_the_watermark(keys_home: Path, shared_faces: Path, tmp_path: Path) -> None:
    """A short clip made from a real photo: every frame watermarked, found again after H.264 encoding."""
    src = tmp_path / "clip.mp4"
    photo = shared_faces / "real_photos" / "df_img10.jpg"
    # fmt: off
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-loop", "1", "-i", str(photo), "-t", "1", "-r", "8",
                    "-vf", "scale=400:-2,noise=alls=4:allf=t", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src)],
                   check=True, timeout=120)
    # fmt: on
    dst = tmp_path / "labelled.mp4"
    res = label_file(src, dst, LabelOptions(produce_id="vid-1", c2pa=False), keys_home)
    rep = verify_file(dst, home=keys_home)
    assert rep.watermark and rep.watermark["detected"]
    assert rep.watermark["payload_hex"] == res.watermark_payload
    assert "watermark payload matches the metadata ProduceID" in rep.agreement


def test_api_bad_options_are_4xx(app_client: TestClient, api_key: Callable[..., str], media_dir: Path) -> None:
    from deepshield.config import get_settings
    from deepshield.labels.keys import init_keys
    from tests.conftest import auth

    key = api_key("label")
    data = (media_dir / "a.png").read_bytes()
    r = app_client.post("/v1/labels", headers=auth(key), files={"file": ("a.png", data, "image/png")})
    assert r.status_code == 503 and r.json()["error"] == "keys_missing"  # not configured yet: says what to run
    init_keys(get_settings().home)
    for form in ({"position": "middle"}, {"label": "7"}, {"text": "made by a machine"}, {"producer": "生成器"}):
        r = app_client.post("/v1/labels", headers=auth(key), files={"file": ("a.png", data, "image/png")}, data=form)
        assert 400 <= r.status_code < 500, (form, r.status_code, r.text)
        assert "error" in r.json()
    r = app_client.post("/v1/labels/verify", headers=auth(key), files={"file": ("a.png", data[:100], "image/png")})
    assert 400 <= r.status_code < 500 or r.status_code == 200
