"""AIGC implicit labels: round trips per format, checked by exiftool/ffprobe; signatures; forged blocks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from deepshield.labels import aigc as aigc_mod
from deepshield.labels import xmp
from deepshield.labels.aigc import AigcLabel, CodeStatus
from deepshield.labels.containers import read_aigc_json, write_aigc_json
from tests.labels.helpers import ffprobe_json

FORMS = ["element", "attribute"]


def _label() -> AigcLabel:
    return AigcLabel(Label="1", ContentProducer="acme-gen", ProduceID="p-123")


def _exiftool(path: Path) -> dict:
    if shutil.which("exiftool") is None:
        pytest.skip("exiftool absent (libimage-exiftool-perl in scripts/apt-packages.txt)")
    out = subprocess.run(["exiftool", "-j", "-G1", "-a", str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", ["a.jpg", "a.png", "a.webp", "lossless.webp"])
def test_image_xmp_round_trip_read_by_exiftool(media_dir: Path, tmp_path: Path, name: str, form: str) -> None:
    dst = tmp_path / name
    j = _label().to_json()
    write_aigc_json(media_dir / name, dst, j, form)  # type: ignore[arg-type]
    assert read_aigc_json(dst)[0] == j
    meta = _exiftool(dst)
    assert json.loads(meta["XMP-TC260:Aigc"]) == json.loads(j)
    if name.endswith(".png"):
        assert json.loads(meta["PNG:AIGC"]) == json.loads(j)
    from PIL import Image

    with Image.open(dst) as im, Image.open(media_dir / name) as orig:
        im.load()
        assert im.size == orig.size


def test_existing_xmp_is_kept_and_value_replaced(media_dir: Path, tmp_path: Path) -> None:
    packet = xmp.XMP_HEADER + (
        f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="{xmp.RDF_NS}">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'xmlns:TC260="{xmp.TC260_NS}" TC260:AIGC="{{&quot;Label&quot;:&quot;2&quot;}}">'
        "<dc:format>image/jpeg</dc:format></rdf:Description></rdf:RDF></x:xmpmeta>" + xmp.XMP_TRAILER
    )
    assert xmp.read_aigc(packet) == '{"Label":"2"}'  # attribute form written by someone else
    merged = xmp.set_in_packet(packet, '{"Label":"1"}')
    assert xmp.read_aigc(merged) == '{"Label":"1"}'
    assert "image/jpeg" in merged and merged.count("TC260:AIGC") == 2  # open + close tag, no stale attribute


def test_wav_riff_chunk(media_dir: Path, tmp_path: Path) -> None:
    dst = tmp_path / "a.wav"
    j = _label().to_json()
    write_aigc_json(media_dir / "a.wav", dst, j)
    assert read_aigc_json(dst) == (j, "wav")
    data = dst.read_bytes()
    assert data[:4] == b"RIFF" and int.from_bytes(data[4:8], "little") == len(data) - 8
    assert b"AIGC" in data
    subprocess.run(["ffprobe", "-v", "error", str(dst)], check=True)


def test_mp3_id3_txxx_read_by_ffprobe_and_exiftool(media_dir: Path, tmp_path: Path) -> None:
    dst = tmp_path / "a.mp3"
    j = _label().to_json()
    write_aigc_json(media_dir / "a.mp3", dst, j)
    write_aigc_json(dst, dst, j.replace("p-123", "p-456"))  # rewriting replaces, never duplicates
    assert json.loads(read_aigc_json(dst)[0] or "")["ProduceID"] == "p-456"
    tags = ffprobe_json(dst, "format_tags")
    assert json.loads(tags["format"]["tags"]["AIGC"])["ProduceID"] == "p-456"
    assert tags["format"]["tags"]["title"] == "tune"  # other tags kept
    meta = _exiftool(dst)
    assert "Warning" not in " ".join(meta)
    assert any("p-456" in str(v) for k, v in meta.items() if "UserDefinedText" in k)


def test_mp4_key_without_reencoding(media_dir: Path, tmp_path: Path) -> None:
    dst = tmp_path / "v.mp4"
    j = _label().to_json()
    write_aigc_json(media_dir / "v.mp4", dst, j)
    assert read_aigc_json(dst)[0] == j
    entries = "format_tags:stream=codec_name,nb_frames"
    after, before = ffprobe_json(dst, entries), ffprobe_json(media_dir / "v.mp4", entries)
    assert after["format"]["tags"]["AIGC"] == j
    assert after["streams"] == before["streams"]  # same streams, same frame counts: stream copy


def test_signatures_valid_forged_and_unknown(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    trusted = {aigc_mod.key_id(key.public_key()): key.public_key()}
    lab = aigc_mod.sign_producer(_label(), key)
    assert aigc_mod.verify_codes(lab, trusted) == (CodeStatus.VALID, CodeStatus.ABSENT)
    lab.ContentPropagator, lab.PropagateID = "plat", "q-1"
    aigc_mod.sign_propagator(lab, key)
    assert aigc_mod.verify_codes(lab, trusted) == (CodeStatus.VALID, CodeStatus.VALID)
    forged = AigcLabel.from_json(lab.to_json())
    forged.ContentProducer = "someone-else"
    assert aigc_mod.verify_codes(forged, trusted)[0] is CodeStatus.INVALID
    foreign = aigc_mod.sign_producer(_label(), other)
    assert aigc_mod.verify_codes(foreign, trusted)[0] is CodeStatus.UNKNOWN_KEY
    junk = AigcLabel(Label="1", ContentProducer="x", ProduceID="y", ReservedCode1="deadbeef")
    assert aigc_mod.verify_codes(junk, trusted)[0] is CodeStatus.UNVERIFIABLE


def test_non_ascii_field_rejected() -> None:
    from deepshield.labels.errors import LabelError

    with pytest.raises(LabelError):
        AigcLabel(ContentProducer="生成器").validate()


def test_truncated_files_do_not_crash_the_reader(media_dir: Path, tmp_path: Path) -> None:
    j = _label().to_json()
    for name in ("a.jpg", "a.png", "a.webp", "a.wav", "a.mp3"):
        full = tmp_path / f"full-{name}"
        write_aigc_json(media_dir / name, full, j)
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(full.read_bytes()[:200])
        value, _ = read_aigc_json(cut)
        assert value is None or value == j
