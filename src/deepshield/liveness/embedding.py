"""Face embeddings for matching the video's face to the ID photo.

The embedder is dlib's ResNet (`dlib_face_recognition_resnet_model_v1.dat`, 128-d, 99.38% on LFW) with dlib's
5-point landmark model for its alignment, both shipped in the `face_recognition_models` wheel. The 68-point model
in that wheel (trained on iBUG 300-W, non-commercial) is never loaded. Faces are found by `deepshield.faces`
(MediaPipe); dlib only aligns and embeds, so no dlib detector runs.
"""

from __future__ import annotations

import abc
import importlib.util
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from deepshield.errors import NotConfigured
from deepshield.faces.types import Face


@dataclass(frozen=True)
class EmbedderInfo:
    name: str
    version: str
    dim: int
    metric: str  # "euclidean": smaller is more alike


class FaceEmbedder(abc.ABC):
    info: EmbedderInfo

    @abc.abstractmethod
    def embed(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """A unit-free embedding of `face` (found in `rgb`)."""

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)))


def _models_dir() -> Path | None:
    # Located without importing the package: its __init__ needs pkg_resources, which new setuptools lack.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "models"
    return d if d.is_dir() else None


class DlibResNetEmbedder(FaceEmbedder):
    """dlib ResNet-34 face descriptor on a 150 px chip aligned by dlib's 5-point model."""

    def __init__(self, models_dir: Path) -> None:
        import dlib

        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(models_dir / "shape_predictor_5_face_landmarks.dat"))
        self._net = dlib.face_recognition_model_v1(str(models_dir / "dlib_face_recognition_resnet_model_v1.dat"))
        self._lock = threading.Lock()
        self.info = EmbedderInfo(name="dlib-resnet-v1", version=f"dlib {dlib.__version__}", dim=128, metric="euclidean")

    def embed(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        dlib = self._dlib
        x0, y0, x1, y1 = face.box
        # MediaPipe's box is tighter at the top than dlib's detector box that the 5-point model was trained on.
        h = y1 - y0
        rect = dlib.rectangle(int(round(x0)), int(round(y0 - 0.05 * h)), int(round(x1)), int(round(y1)))
        img = np.ascontiguousarray(rgb)
        with self._lock:
            shape = self._shape(img, rect)
            desc = self._net.compute_face_descriptor(img, shape, 0, 0.25)
        return np.asarray(desc, dtype=np.float32)


@lru_cache(maxsize=1)
def _cached() -> FaceEmbedder | None:
    d = _models_dir()
    if d is None or not (d / "dlib_face_recognition_resnet_model_v1.dat").exists():
        return None
    try:
        return DlibResNetEmbedder(d)
    except ImportError:
        return None


def get_embedder(required: bool = False) -> FaceEmbedder | None:
    """The installed embedder, or None (or NotConfigured when `required`) if dlib or the model is missing."""
    emb = _cached()
    if emb is None and required:
        raise NotConfigured("no face embedder installed: pip install dlib-bin face_recognition_models")
    return emb
