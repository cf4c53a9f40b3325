"""Face regions whose colours the flash check compares: light from a screen in front of a 3-D head is strongest
where the skin faces the screen (forehead, nose), weaker on the cheeks' sides that turn away from it, and it also
reaches the hair and neck just outside the face outline. A tint painted on the face is flat inside the outline
and absent beyond it (issue 32)."""

from __future__ import annotations

import numpy as np

from deepshield.faces.landmarks import FACE_OVAL

#: Mesh points sampled per region (MediaPipe face mesh indices). The cheek sides sit between the cheekbone and
#: the outline, where the surface turns away from the camera; the chin is below the lower lip.
REGION_POINTS: dict[str, list[int]] = {
    "forehead": [151, 9, 108, 337],
    "nose": [4, 5, 195, 197],
    "cheek_left": [123, 116, 147],
    "cheek_right": [352, 345, 376],
    "chin": [152, 175, 199],
}
#: The ring just outside the face outline (hair, ears, neck, or the background beside them): the outline grown by
#: this factor about its centre, sampled at `RING_POINTS` angles. A painted tint's soft edge ends before it.
RING_SCALE = 1.3
RING_POINTS = 16
REGIONS = (*REGION_POINTS, "outside")
FRONT_REGIONS = ("forehead", "nose")
SIDE_REGIONS = ("cheek_left", "cheek_right")


def ring_points(lm: np.ndarray, scale: float = RING_SCALE, count: int = RING_POINTS) -> np.ndarray:
    """Points on the face outline grown by `scale` about its centre, `count` of them evenly along it."""
    oval = lm[FACE_OVAL, :2]
    c = oval.mean(axis=0)
    pick = np.linspace(0, len(oval), count, endpoint=False).astype(int)
    return np.asarray((oval[pick] - c) * scale + c, dtype=np.float32)


def region_points(lm: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel positions to sample for each region, from the mesh `lm` (N x 2 or N x 3, pixels)."""
    pts = {name: np.asarray(lm[idx, :2], dtype=np.float32) for name, idx in REGION_POINTS.items()}
    pts["outside"] = ring_points(lm)
    return pts
