"""Consent benchmark: false accepts and false rejects of the face and voice matches over every pair of people
the corpus allows, with the thresholds used and 95% upper bounds; and the time to check a labelled file's
consent credential beside the label verification time, in the same run.

  python benchmarks/consent.py                      # both sections
  python benchmarks/consent.py --sections pairs
  python benchmarks/consent.py --sections verify

pairs   Each single-person video of ../shared/data/faces/real_videos is split in halves: the first half is the
        "source media", the second the "consent video". Genuine: the two halves of one video, and the halves of
        two videos of one person (AOC appears twice). Impostor: source half of one person against consent half
        of every other person (both orders). Voice also uses Debian's pocketsphinx-testdata LibriVox reader (one
        more speaker, five utterances). A credential is issued only when face AND voice pass; review is anything
        between pass and reject thresholds.
verify  a labelled MP4 carrying a consent credential: `verify_file` (labels) beside the consent check alone.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from deepshield.consent.policy import ConsentPolicy  # noqa: E402
from deepshield.liveness.attacks.evaluate import upper_bound  # noqa: E402

FACES = ROOT.parent / "shared" / "data" / "faces"
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
#: Videos showing one person who also appears in another file (same identity, different recording).
SAME_PERSON = {"st_WDA_AlexandriaOcasioCortez_000": "aoc", "vr_face3": "aoc"}
#: Not a single-person recording: a street crowd.
NOT_SINGLE = {"fp_street"}


def _work() -> Path:
    d = Path(os.environ.get("DEEPSHIELD_WORK", ROOT / ".work")) / "consent-bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def face_halves(videos: list[Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from deepshield.consent.face import face_template
    from deepshield.faces import FaceAnalyzer
    from deepshield.media import open_media

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    fa = FaceAnalyzer(max_faces=4)
    for v in videos:
        cache = _work() / f"face-{v.stem}.npz"
        if not cache.exists():
            t = face_template(v, fa, frames=16)
            np.savez(cache, vectors=t.vectors, times=t.times)
        z = np.load(cache)
        m = open_media(v)
        mid = (m.info.duration_s or 0) / 2
        first, second = z["vectors"][z["times"] < mid], z["vectors"][z["times"] >= mid]
        if len(first) and len(second):
            out[v.stem] = (first, second)
    fa.close()
    return out


def voice_halves(files: list[Path]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from deepshield.consent.audio import NoAudio, load_speech
    from deepshield.consent.voice import TooLittleSpeech, get_voice_embedder

    enc = get_voice_embedder(required=True)
    assert enc is not None
    cache = _work() / "voice.json"
    known: dict[str, list[list[float]] | None] = json.loads(cache.read_text()) if cache.exists() else {}
    for f in files:
        if f.stem in known:
            continue
        try:
            x = load_speech(f)
            half = len(x) // 2
            known[f.stem] = [enc.embed(x[:half]).vector.tolist(), enc.embed(x[half:]).vector.tolist()]
        except (NoAudio, TooLittleSpeech):
            known[f.stem] = None
        cache.write_text(json.dumps(known))
    return {k: (np.asarray(v[0]), np.asarray(v[1])) for k, v in known.items() if v is not None}


def face_dist(a: np.ndarray, b: np.ndarray) -> float:
    d = np.sqrt(np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0))
    return float(np.median(d))


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def who(stem: str) -> str:
    if stem.startswith("sense_and_sensibility"):
        return "librivox-reader"
    return SAME_PERSON.get(stem, stem)


def _rate(label: str, errors: int, n: int) -> str:
    return f"{label}: {errors} / {n}  (95% upper bound {upper_bound(errors, n):.4f})"


def pairs_section(policy: ConsentPolicy) -> None:
    videos = sorted(p for p in (FACES / "real_videos").glob("*.mp4") if p.stem not in NOT_SINGLE)
    faces = face_halves(videos)
    speech = [v for v in videos] + sorted(LIBRIVOX.glob("*.wav"))
    voices = voice_halves(speech)
    # LibriVox: five utterances of one reader; halves are too short, so each utterance is one sample.
    for k in [k for k in voices if k.startswith("sense_and")]:
        a, b = voices[k]
        voices[k] = ((a + b) / 2, (a + b) / 2)
    fm, fr = policy.face_match_distance, policy.face_reject_distance
    vm, vr = policy.voice_match_similarity, policy.voice_reject_similarity
    print(
        f"thresholds: face pass <= {fm}, fail > {fr} (dlib ResNet median distance); "
        f"voice pass >= {vm}, fail < {vr} (GE2E cosine)"
    )
    print(f"face: {len(faces)} videos with a face in both halves; voice: {len(voices)} recordings with speech")

    def face_pairs(genuine: bool) -> list[tuple[str, str, float]]:
        out = []
        for a, b in itertools.product(faces, faces):
            if (a == b) if not genuine else False:
                continue
            same = who(a) == who(b)
            if same == genuine:
                out.append((a, b, face_dist(faces[a][0], faces[b][1])))
        return out

    def voice_pairs(genuine: bool) -> list[tuple[str, str, float]]:
        out = []
        for a, b in itertools.product(voices, voices):
            if a == b and (not genuine or a.startswith("sense_and")):
                continue
            if (who(a) == who(b)) == genuine:
                out.append((a, b, cos(voices[a][0], voices[b][1])))
        return out

    fg, fi = face_pairs(True), face_pairs(False)
    vg, vi = voice_pairs(True), voice_pairs(False)
    print("\nFACE (source first half -> consent second half)")
    print("  " + _rate("false accepts (impostor <= pass)", sum(d <= fm for *_, d in fi), len(fi)))
    print("  " + _rate("impostor not failed (<= reject, i.e. review or pass)", sum(d <= fr for *_, d in fi), len(fi)))
    print("  " + _rate("false rejects (genuine > reject)", sum(d > fr for *_, d in fg), len(fg)))
    print("  " + _rate("genuine not passed (> pass: review or fail)", sum(d > fm for *_, d in fg), len(fg)))
    print(f"  genuine distance max {max(d for *_, d in fg):.3f}; impostor min {min(d for *_, d in fi):.3f}")
    print("  closest impostors:", ", ".join(f"{a}/{b} {d:.3f}" for a, b, d in sorted(fi, key=lambda x: x[2])[:4]))
    print("\nVOICE (GE2E cosine similarity)")
    print("  " + _rate("false accepts (impostor >= pass)", sum(s >= vm for *_, s in vi), len(vi)))
    print("  " + _rate("impostor not failed (>= reject)", sum(s >= vr for *_, s in vi), len(vi)))
    print("  " + _rate("false rejects (genuine < reject)", sum(s < vr for *_, s in vg), len(vg)))
    print("  " + _rate("genuine not passed (< pass)", sum(s < vm for *_, s in vg), len(vg)))
    print(f"  genuine similarity min {min(s for *_, s in vg):.3f}; impostor max {max(s for *_, s in vi):.3f}")
    print("  closest impostors:", ", ".join(f"{a}/{b} {s:.3f}" for a, b, s in sorted(vi, key=lambda x: -x[2])[:4]))
    print("  weakest genuine:", ", ".join(f"{a}/{b} {s:.3f}" for a, b, s in sorted(vg, key=lambda x: x[2])[:4]))

    both = [k for k in faces if k in voices]
    joint_imp = [(a, b) for a, b in itertools.product(both, both) if who(a) != who(b)]
    issued = [
        (a, b)
        for a, b in joint_imp
        if face_dist(faces[a][0], faces[b][1]) <= fm and cos(voices[a][0], voices[b][1]) >= vm
    ]
    print("\nJOINT (a credential needs face AND voice to pass)")
    print("  " + _rate("impostor credentials issued", len(issued), len(joint_imp)))
    gen = [k for k in both if not k.startswith("sense_and")]
    clean = [k for k in gen if face_dist(faces[k][0], faces[k][1]) <= fm and cos(voices[k][0], voices[k][1]) >= vm]
    failed = [k for k in gen if face_dist(faces[k][0], faces[k][1]) > fr or cos(voices[k][0], voices[k][1]) < vr]
    print(
        f"  genuine single-person talking videos with audio: {len(clean)} / {len(gen)} issued without review "
        f"({100 * len(clean) / max(1, len(gen)):.0f}%), {len(failed)} failed"
    )
    print(
        "  not issued without review:",
        ", ".join(
            f"{k} (face {face_dist(faces[k][0], faces[k][1]):.3f}, voice {cos(voices[k][0], voices[k][1]):.3f})"
            for k in gen
            if k not in clean
        )
        or "none",
    )


def verify_section(runs: int = 20) -> None:
    """Label a 3 s corpus clip with and without a consent credential (issued into a fresh SQLite store), then
    time `verify_file` (labels: metadata + C2PA, no watermark search) on both, and the consent check alone
    (parse, Ed25519 signature, expiry, revocation lookup in the store), medians of `runs` runs."""
    import datetime as dt
    import statistics
    import subprocess
    import tempfile
    import time

    from deepshield.config import Settings
    from deepshield.consent.models import ConsentRequest
    from deepshield.consent.revocation import register_revocation_source, unregister_revocation_source
    from deepshield.consent.service import ConsentService
    from deepshield.labels.aigc import AigcLabel
    from deepshield.labels.keys import init_keys
    from deepshield.labels.service import LabelOptions, consent_report, label_file, verify_file
    from deepshield.store.db import session_scope, upgrade_schema
    from deepshield.store.timeutil import utcnow

    with tempfile.TemporaryDirectory() as td:
        home = Path(td)
        st = Settings(home=home)
        init_keys(home)
        upgrade_schema(st)
        now = utcnow()
        with session_scope(st) as db:
            rec = ConsentRequest(
                id="bench", capture_expires_at=now + dt.timedelta(days=1), created_by="bench", provider="Bench",
                purpose="benchmark", consent_expires_at=now + dt.timedelta(days=30), status="issued",
                token_hash="0" * 64, source_json=json.dumps([{"sha256": "a" * 64}]), sentence="",
                evidence_json=json.dumps({"face_template": [[0.0] * 128], "voice_template": [0.0] * 256}),
            )  # fmt: skip
            db.add(rec)
            db.flush()
            token = ConsentService(st).issue(db, rec).token
        register_revocation_source(st)
        clip = home / "clip.mp4"
        src = FACES / "real_videos" / "vr_face1.mp4"
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-t", "3", "-c:v", "libx264", "-c:a", "aac",
                        str(clip)], check=True, timeout=300)  # fmt: skip
        with_consent, without = home / "with.mp4", home / "without.mp4"
        opts = {"watermark": False, "visible": False}
        label_file(clip, with_consent, LabelOptions(consent=token, **opts), home)  # type: ignore[arg-type]
        label_file(clip, without, LabelOptions(**opts), home)  # type: ignore[arg-type]

        rep = verify_file(with_consent, watermark=False, home=home)
        assert rep.consent["state"] == "valid", rep.consent
        aigc = (rep.metadata or {}).get("aigc")
        label = AigcLabel.from_json(json.dumps(aigc)) if isinstance(aigc, dict) else None

        def once(fn: Callable[[], object]) -> float:
            t = time.perf_counter()
            fn()
            return (time.perf_counter() - t) * 1000

        # Interleaved, so a burst of load on the shared machine falls on all three alike.
        rows = [
            (
                once(lambda: verify_file(without, watermark=False, home=home)),
                once(lambda: verify_file(with_consent, watermark=False, home=home)),
                once(lambda: consent_report(rep.c2pa, label, home)),
            )
            for _ in range(runs)
        ]
        t_without, t_with, t_consent = (statistics.median(col) for col in zip(*rows, strict=True))
        unregister_revocation_source()
    print(f"\nVERIFY (3 s 480p MP4, metadata + C2PA, no watermark search; median of {runs})")
    print(f"  label verification without consent: {t_without:.1f} ms")
    print(f"  label verification with consent:    {t_with:.1f} ms (consent state: {rep.consent['state']})")
    print(f"  consent check alone (signature, expiry, revocation lookup): {t_consent:.2f} ms  (target < 50 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="pairs,verify")
    args = ap.parse_args()
    if not FACES.is_dir():
        sys.exit(f"error: {FACES} not found (the shared face corpus)")
    sections = set(args.sections.split(","))
    policy = ConsentPolicy()
    if "pairs" in sections:
        pairs_section(policy)
    if "verify" in sections:
        verify_section()


if __name__ == "__main__":
    main()
