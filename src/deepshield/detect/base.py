"""The one interface every face-forgery detector implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import TypeAlias, TypedDict

import numpy as np
from numpy.typing import NDArray

from deepshield.faces.types import Face
from deepshield.media.types import MediaKind, RGBImage


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    version: str
    #: Score at or above which a face is called manipulated (documented in the model card).
    threshold: float
    input_size: int
    description: str = ""
    #: The threshold for still photos where it differs: photos are sharper and larger than video frames and a
    #: video-calibrated threshold flags more real ones (model card). None: `threshold` for every medium.
    photo_threshold: float | None = None

    def threshold_for(self, kind: MediaKind) -> float:
        """The documented threshold the verdict uses for this kind of media."""
        if kind is MediaKind.IMAGE and self.photo_threshold is not None:
            return self.photo_threshold
        return self.threshold


#: Where a score came from: H x W weights in the pixels of the detector's crop.
FaceHeatmap: TypeAlias = NDArray[np.float32] | NDArray[np.float64]


class FaceEvidence(TypedDict, total=False):
    """What a detector may show for its score of one face, when asked to explain it."""

    heatmap: FaceHeatmap
    crop: RGBImage  # the detector's own input crop that the heat map refers to


@dataclass
class FaceScore:
    """A calibrated probability in [0, 1] that the face is manipulated, and what supports it."""

    score: float
    evidence: FaceEvidence = field(default_factory=lambda: FaceEvidence())

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0) or np.isnan(self.score):
            raise ValueError(f"detector score must be a probability in [0, 1], got {self.score}")


class Detector(abc.ABC):
    """Scores faces. Implementations live in their own modules and register by name."""

    info: DetectorInfo

    @abc.abstractmethod
    def score_faces(self, rgb: RGBImage, faces: list[Face], explain: bool = False) -> list[FaceScore]:
        """One FaceScore per face, in order. `explain` asks for a heat map of where the model looked."""
