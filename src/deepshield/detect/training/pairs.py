"""The stream of training pairs drawn from cached real faces: (real, fake, mask), the fake self-blended or, for
a `cross_prob` share, blended from another identity with about the same head turn. Pure numpy (no torch), so
the sample grid and the training loader draw exactly the same pairs."""

from __future__ import annotations

import numpy as np

from deepshield.detect.training.facecache import CachedFaces
from deepshield.detect.training.sbi import SbiParams, make_pair
from deepshield.detect.training.xblend import yaw_proxy


class TrainingPairs:
    """Randomness comes from (seed, epoch, index), so a run is reproducible whatever the worker count."""

    def __init__(self, faces: CachedFaces, params: SbiParams, seed: int = 0) -> None:
        self.faces = faces
        self.params = params
        self.seed = seed
        self.epoch = 0
        self.yaw = np.array([yaw_proxy(lm) for lm in faces.landmarks])
        self.groups = np.array(faces.groups)

    def __len__(self) -> int:
        return len(self.faces)

    def donor_for(self, i: int, rng: np.random.Generator, candidates: int = 8) -> int | None:
        """A crop of another identity with about the same head turn (closest of a few random ones)."""
        pick = rng.integers(0, len(self.faces), size=candidates * 2)
        pick = pick[self.groups[pick] != self.groups[i]][:candidates]
        if len(pick) == 0:
            return None
        return int(pick[np.argmin(np.abs(self.yaw[pick] - self.yaw[i]))])

    def pair(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch, i])
        donor = None
        if self.params.cross_prob > 0 and rng.random() < self.params.cross_prob:
            j = self.donor_for(i, rng)
            if j is not None:
                donor = (self.faces.images[j], self.faces.landmarks[j])
        return make_pair(self.faces.images[i], self.faces.landmarks[i], rng, self.params, donor)
