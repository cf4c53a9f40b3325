"""Banks in the store: metadata, withdrawal by case, negative banks, thresholds, sync across processes."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from deepshield.config import Settings
from deepshield.matching import service as svc
from deepshield.matching.bits import hex_to_words, words_to_hex
from deepshield.matching.indexes import MatchIndexes
from deepshield.matching.signals.pdq import pdq_from_rgb
from deepshield.matching.storage import SqlMatchStore
from deepshield.store.db import session_scope


def _flip(h: str, n: int, seed: int = 0) -> str:
    w = hex_to_words(h)
    rng = np.random.default_rng(seed)
    for b in rng.choice(256, n, replace=False):
        w[b // 64] ^= np.uint64(1) << np.uint64(63 - b % 64)
    return words_to_hex(w)


H = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def test_bank_lifecycle_and_withdrawal(match_settings: Settings, real_photos: list[Path], tmp_path: Path) -> None:
    st = match_settings
    with session_scope(st) as s:
        svc.create_bank(s, "NCII")
        svc.create_bank(s, "OTHER")
        with pytest.raises(svc.BankExists):
            svc.create_bank(s, "NCII")
        with pytest.raises(svc.InvalidBank):
            svc.create_bank(s, "lower case")
        e1 = svc.add_file(
            s,
            "NCII",
            real_photos[0],
            svc.EntryMeta(source="report", case_id="C1", added_by="ana", note="first"),
        )
        svc.add_hash(
            s,
            "OTHER",
            "pdq",
            pdq_from_rgb(np.asarray(Image.open(real_photos[0]).convert("RGB"))).hash,
            svc.EntryMeta(case_id="C1"),
        )
        svc.add_file(s, "NCII", real_photos[3], svc.EntryMeta(case_id="C2"))
    assert set(e1.signals) == {"pdq", "md5", "sha256"}
    # A JPEG re-encode of the banked photo matches, with the entry's metadata.
    im = ImageOps.exif_transpose(Image.open(real_photos[0])).convert("RGB")
    reenc = tmp_path / "reenc.jpg"
    im.save(reenc, "JPEG", quality=40)
    with session_scope(st) as s:
        r = svc.lookup_file(s, reenc, settings=st)
        pdq = [m for m in r.matches if m.signal_type == "pdq"]
        assert {m.bank for m in pdq} == {"NCII", "OTHER"}
        m = next(m for m in pdq if m.bank == "NCII")
        assert m.entry["case_id"] == "C1" and m.entry["source"] == "report" and m.entry["added_by"] == "ana"
        assert 0 <= m.distance <= 31 and not [x for x in r.matches if x.signal_type == "md5"]  # bytes differ
        assert {b.name: b.entries for b in svc.list_banks(s)} == {"NCII": 2, "OTHER": 1}
    # Withdrawal removes the case everywhere, visible to the next lookup; other cases stay.
    with session_scope(st) as s:
        assert svc.remove_case(s, "C1") == 2
    with session_scope(st) as s:
        assert svc.lookup_file(s, reenc, settings=st).matches == []
        assert svc.lookup_file(s, real_photos[3], settings=st).matched


def test_thresholds_disable_and_negative_bank(match_settings: Settings) -> None:
    st = match_settings
    with session_scope(st) as s:
        svc.create_bank(s, "STRICT", threshold=10)
        svc.create_bank(s, "LOOSE")
        svc.create_bank(s, "FP", negative=True)
        svc.add_hash(s, "STRICT", "pdq", H)
        svc.add_hash(s, "LOOSE", "pdq", H)
    q = _flip(H, 20)
    with session_scope(st) as s:
        kept, _ = svc.lookup_signal(s, "pdq", q, settings=st)
        assert [m.bank for m in kept] == ["LOOSE"] and kept[0].distance == 20
        assert not kept[0].needs_review
        kept, _ = svc.lookup_signal(s, "pdq", _flip(H, 30), settings=st)
        assert kept[0].needs_review  # within 4 bits of the threshold
        svc.update_bank(s, "LOOSE", enabled=False)
    with session_scope(st) as s:
        assert svc.lookup_signal(s, "pdq", q, settings=st)[0] == []
        svc.update_bank(s, "LOOSE", enabled=True)
        # A known false positive: the query is closer to it than to the banked hash -> suppressed.
        svc.add_hash(s, "FP", "pdq", _flip(q, 2, seed=9))
    with session_scope(st) as s:
        kept, suppressed = svc.lookup_signal(s, "pdq", q, settings=st)
        assert kept == [] and [m.bank for m in suppressed] == ["LOOSE"]
        assert suppressed[0].suppressed_by and suppressed[0].suppressed_by["bank"] == "FP"
        # A near-exact re-upload of the banked hash is closer to it than to the false positive: kept.
        kept, _ = svc.lookup_signal(s, "pdq", _flip(H, 1, seed=3), settings=st)
        assert {m.bank for m in kept} == {"STRICT", "LOOSE"}


def test_other_process_changes_are_seen(match_settings: Settings) -> None:
    """Two index sets over one store (two processes): each sees the other's committed writes."""
    st = match_settings
    with session_scope(st) as s:
        svc.create_bank(s, "B")
        svc.add_hash(s, "B", "pdq", H, svc.EntryMeta(case_id="K"))
    other = MatchIndexes()
    with session_scope(st) as s:
        other.sync(SqlMatchStore(s))
    assert len(other.index("pdq")) == 1
    with session_scope(st) as s:
        svc.add_hash(s, "B", "md5", "0" * 32)
        svc.remove_case(s, "K")
    with session_scope(st) as s:
        assert other.sync(SqlMatchStore(s)) >= 2
    assert len(other.index("pdq")) == 0 and len(other.index("md5")) == 1
    # A rolled-back add never reaches memory.
    try:
        with session_scope(st) as s:
            svc.add_hash(s, "B", "pdq", H)
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    with session_scope(st) as s:
        other.sync(SqlMatchStore(s))
        assert len(other.index("pdq")) == 0 and svc.lookup_signal(s, "pdq", H, settings=st)[0] == []


def test_export_import_round_trip(match_settings: Settings) -> None:
    st = match_settings
    with session_scope(st) as s:
        svc.create_bank(s, "SRC", threshold=20, description="d")
        svc.add_hash(s, "SRC", "pdq", H, svc.EntryMeta(source="x", case_id="C9", note="n"))
        svc.add_signals(s, "SRC", {"video_md5": "A" * 32})
        buf = io.StringIO()
        assert svc.export_bank(s, "SRC", buf) == 2
    with session_scope(st) as s:
        name, n = svc.import_bank(s, io.StringIO(buf.getvalue()), "DST")
        assert (name, n) == ("DST", 2)
        b = svc.get_bank(s, "DST")
        assert b.threshold == 20 and b.entries == 2
        entries = svc.list_entries(s, "DST")
        assert entries[0].case_id == "C9" and entries[0].note == "n" and entries[1].signals == {"md5": "a" * 32}
    bad = buf.getvalue().replace(H, "nothex")
    with session_scope(st) as s, pytest.raises(Exception, match="line 2"):
        svc.import_bank(s, io.StringIO(bad), "BAD")


def test_gradual_rollout_ratio(match_settings: Settings) -> None:
    """HMA's matching_enabled_ratio: a 0.5 bank answers about half the seeds; bypass answers always."""
    st = match_settings
    with session_scope(st) as s:
        svc.create_bank(s, "HALF", enabled_ratio=0.5)
        svc.add_hash(s, "HALF", "pdq", H)
    with session_scope(st) as s:
        hits = sum(bool(svc.lookup_signal(s, "pdq", H, seed=str(i), settings=st)[0]) for i in range(200))
        assert 60 < hits < 140
        assert all(svc.lookup_signal(s, "pdq", H, seed=svc.BYPASS_COINFLIP, settings=st)[0] for _ in range(5))


def test_video_bank_and_clip_lookup(match_settings: Settings, faces: Path, tmp_path: Path) -> None:
    """A banked video is found from a re-encoded clip through the vPDQ frame index; another video is not."""
    import subprocess

    st = match_settings
    banked, other = faces / "real_videos" / "vr_face1.mp4", faces / "real_videos" / "lp_d18.mp4"
    clip = tmp_path / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-ss", "1.3", "-i", str(banked), "-t", "3", "-vf",
         "scale=trunc(iw/4)*2:trunc(ih/4)*2", "-c:v", "libx264", "-crf", "30", "-an", str(clip)],
        check=True,
    )  # fmt: skip
    with session_scope(st) as s:
        svc.create_bank(s, "VIDEOS")
        e = svc.add_file(s, "VIDEOS", banked, svc.EntryMeta(case_id="V1"))
        assert set(e.signals) == {"vpdq", "md5", "sha256"} and e.content_type == "video"
    with session_scope(st) as s:
        r = svc.lookup_file(s, clip, settings=st)
        [m] = [m for m in r.matches if m.signal_type == "vpdq"]
        assert m.entry["case_id"] == "V1" and m.video is not None
        assert m.video["query_fraction"] >= 0.8 and m.video["query_ranges"] and m.video["bank_ranges"]
        assert not [m for m in r.matches if m.signal_type in ("md5", "sha256")]  # the bytes differ
        assert svc.lookup_file(s, other, settings=st).matches == []
        assert svc.index_status(s, st)["vpdq"]["videos"] == 1
