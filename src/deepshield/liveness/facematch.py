"""Setting the ID-photo match threshold from impostor pairs: df_master.csv's labelled pairs plus every pair of
different people in lfw_1000 (one photo per person), with false match and false non-match rates and counts."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deepshield.errors import DeepshieldError
from deepshield.faces import FaceAnalyzer
from deepshield.liveness.embedding import get_embedder
from deepshield.media import representative_frame


@dataclass
class MatchCalibration:
    embedder: str
    genuine: np.ndarray  # distances of same-person pairs (df_master "Yes")
    impostor_df: np.ndarray  # df_master "No"
    impostor_lfw: np.ndarray  # all pairs of different LFW people
    skipped: list[str] = field(default_factory=list)

    @property
    def impostors(self) -> np.ndarray:
        return np.concatenate([self.impostor_df, self.impostor_lfw])

    def at(self, threshold: float) -> dict[str, Any]:
        imp = self.impostors
        fm = int((imp <= threshold).sum())
        fnm = int((self.genuine > threshold).sum())
        return {
            "threshold": threshold,
            "false_matches": fm,
            "impostor_pairs": len(imp),
            "fmr": fm / max(1, len(imp)),
            "false_non_matches": fnm,
            "genuine_pairs": len(self.genuine),
            "fnmr": fnm / max(1, len(self.genuine)),
            "false_matches_df": int((self.impostor_df <= threshold).sum()),
            "impostor_pairs_df": len(self.impostor_df),
        }

    def threshold_at_fmr(self, target: float) -> float:
        """The largest threshold whose false matches stay within `target` of the impostor pairs."""
        imp = np.sort(self.impostors)
        allowed = int(np.floor(target * len(imp)))
        return float(imp[allowed] - 1e-4) if allowed < len(imp) else float(imp[-1])


def calibrate(faces_root: Path, lfw: int = 998, log: Callable[[str], None] = lambda s: None) -> MatchCalibration:
    emb = get_embedder(required=True)
    assert emb is not None
    photos = faces_root / "real_photos"
    csv_path = photos / "df_master.csv"
    if not csv_path.exists():
        raise DeepshieldError(f"{csv_path} not found")
    fa = FaceAnalyzer(max_faces=4)
    skipped: list[str] = []

    def embed(p: Path) -> np.ndarray | None:
        rgb = representative_frame(p)
        faces = fa.analyze(rgb)
        if not faces:
            skipped.append(p.name)
            return None
        return emb.embed(rgb, faces[0])

    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    names = sorted({r["file_x"] for r in rows} | {r["file_y"] for r in rows})
    log(f"embedding {len(names)} df photos")
    df = {n: embed(photos / f"df_{n}") for n in names}
    gen: list[float] = []
    imp: list[float] = []
    for r in rows:
        a, b = df.get(r["file_x"]), df.get(r["file_y"])
        if a is None or b is None:
            continue
        (gen if r["Decision"] == "Yes" else imp).append(emb.distance(a, b))
    lfw_paths = sorted((faces_root / "lfw_1000").glob("*.jpg"))[:lfw]
    log(f"embedding {len(lfw_paths)} LFW photos")
    vecs = [v for v in (embed(p) for p in lfw_paths) if v is not None]
    lfw_d = np.zeros(0)
    if len(vecs) > 1:
        m = np.stack(vecs).astype(np.float64)
        sq = (m**2).sum(axis=1)
        d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * m @ m.T, 0))
        lfw_d = d[np.triu_indices(len(m), 1)]
    fa.close()
    return MatchCalibration(emb.info.name, np.array(gen), np.array(imp), lfw_d, skipped)
