"""Still and animated images through Pillow, with EXIF orientation applied and bomb checks before decode."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepshield.errors import CorruptMedia, MediaTooLarge
from deepshield.media.limits import MediaLimits
from deepshield.media.types import AudioTrack, Frame, FrameSampling, MediaInfo

# Pillow's own bomb guard raises at 2x this; we check explicitly with our limit and a clear message instead.
Image.MAX_IMAGE_PIXELS = None


class ImageMedia:
    def __init__(self, info: MediaInfo, limits: MediaLimits) -> None:
        self.info = info
        self._limits = limits
        self._rgb: np.ndarray | None = None
        self._probe()

    def _open(self) -> Image.Image:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                return Image.open(self.info.path)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
            raise CorruptMedia(f"cannot read {self.info.format} image: {e}") from e

    def _probe(self) -> None:
        im = self._open()
        try:
            w, h = im.size
            if w <= 0 or h <= 0:
                raise CorruptMedia("image has zero width or height")
            if w * h > self._limits.max_pixels:
                raise MediaTooLarge(
                    f"image is {w}x{h} = {w * h / 1e6:.0f} megapixels, over the limit of "
                    f"{self._limits.max_pixels / 1e6:.0f} megapixels"
                )
            n = int(getattr(im, "n_frames", 1) or 1)
            if n > 1 and n * w * h > self._limits.max_animation_pixels:
                raise MediaTooLarge(f"animated image has {n} frames of {w}x{h}, over the animation pixel limit")
            self.info.width, self.info.height = w, h
            self.info.frame_count = n
            exif = im.getexif()
            orientation = exif.get(0x0112) if exif else None
            if orientation in (5, 6, 7, 8):
                self.info.width, self.info.height = h, w
            if orientation:
                self.info.extra["exif_orientation"] = int(orientation)
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise CorruptMedia(f"cannot read {self.info.format} image header: {e}") from e
        finally:
            im.close()

    def rgb(self) -> np.ndarray:
        """The first frame as an RGB array, orientation corrected; decoded once."""
        if self._rgb is None:
            im = self._open()
            try:
                im.load()
                im = ImageOps.exif_transpose(im) or im
                if im.mode not in ("RGB",):
                    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                        im = im.convert("RGBA")
                        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                        im = Image.alpha_composite(bg, im)
                    im = im.convert("RGB")
                self._rgb = np.asarray(im, dtype=np.uint8).copy()
            except (OSError, SyntaxError, ValueError, EOFError) as e:
                raise CorruptMedia(f"cannot decode {self.info.format} image: {e}") from e
            finally:
                im.close()
        return self._rgb

    def frames(self, sampling: FrameSampling | None = None) -> Iterator[Frame]:
        yield Frame(index=0, time_s=0.0, rgb=self.rgb())

    def audio(self) -> AudioTrack | None:
        return None

    def close(self) -> None:
        self._rgb = None
