"""The one interface every face-forgery detector implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from deepshield.faces.types import Face


@dataclass(frozen=True)
class DetectorInfo:
    name: str
    version: str
    #: Score at or above which a face is called manipulated (documented in the model card).
    threshold: float
    input_size: int
    description: str = ""


@dataclass
class FaceScore:
    """A calibrated probability in [0, 1] that the face is manipulated, and what supports it."""

    score: float
    #: Optional per-face evidence: e.g. {"heatmap": HxW float array in crop space, "crop": RGB crop}.
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (0.0 <= self.score <= 1.0) or np.isnan(self.score):
            raise ValueError(f"detector score must be a probability in [0, 1], got {self.score}")


class Detector(abc.ABC):
    """Scores faces. Implementations live in their own modules and register by name."""

    info: DetectorInfo

    @abc.abstractmethod
    def score_faces(self, rgb: np.ndarray, faces: list[Face], explain: bool = False) -> list[FaceScore]:
        """One FaceScore per face, in order. `explain` asks for a heat map of where the model looked."""
