"""Still and animated images through Pillow, with EXIF orientation applied and bomb checks before decode.

A JPEG cut short (its end-of-image marker or more missing) is decoded as far as its data goes, the rest grey,
which is what a browser shows: a truncated copy of a banked photo must be hashed and matched, not refused as
corrupt while a browser displays it. This is done per file (`_JpegFile` supplies the missing marker, as
Pillow's process-wide `LOAD_TRUNCATED_IMAGES` would) and the file is marked `extra["truncated"]`.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from deepshield.errors import CorruptMedia, MediaTooLarge
from deepshield.media.limits import MediaLimits
from deepshield.media.types import AudioTrack, Frame, FrameSampling, MediaInfo

# Pillow's own bomb guard raises at 2x this; we check explicitly with our limit and a clear message instead.
Image.MAX_IMAGE_PIXELS = None

EOI = b"\xff\xd9"


class _JpegFile(io.FileIO):
    """A JPEG file that ends with an end-of-image marker even when it was cut short: at the first read past
    the end it returns EOI once (and records `padded`), so libjpeg finishes the image with what it has.
    Confined to the files `ImageMedia` opens; Pillow's global flag stays off for every other reader."""

    padded = False

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        if not data and size != 0 and not self.padded:
            self.padded = True
            return EOI
        return data or b""


class ImageMedia:
    def __init__(self, info: MediaInfo, limits: MediaLimits) -> None:
        self.info = info
        self._limits = limits
        self._rgb: np.ndarray | None = None
        self._probe()

    @contextmanager
    def _opened(self) -> Iterator[Image.Image]:
        """The image opened lazily (header read, pixels not yet decoded); a JPEG through `_JpegFile`. On exit
        the file is closed and, if its end had to be supplied, the media is marked truncated."""
        fp = _JpegFile(self.info.path, "rb") if self.info.format == "jpeg" else None
        try:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    im = Image.open(fp or self.info.path)
            except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
                raise CorruptMedia(f"cannot read {self.info.format} image: {e}") from e
            try:
                yield im
            finally:
                im.close()
        finally:
            if fp is not None:
                if fp.padded:
                    self.info.extra["truncated"] = True
                fp.close()

    def stored_pixels(self, scale: int = 1) -> np.ndarray:
        """The first frame's pixels as the file stores them, read as python-threatexchange reads them for PDQ:
        no EXIF orientation, a fourth channel (alpha, CMYK's K) ignored, one channel (grey, or a palette's
        indices) repeated three times, grey-alpha and 16/32-bit grey converted to RGB. Exchanged hashes are made
        from this so that they equal the reference library's. `scale` > 1 decodes a JPEG at 1/`scale`
        (libjpeg's DCT scaling), for lookups only. Through the same truncation-tolerant open as `rgb`."""
        with self._opened() as im:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if scale > 1:
                        im.draft("RGB", (im.size[0] // scale, im.size[1] // scale))
                    if im.mode not in ("L", "P", "RGB", "RGBA", "RGBX", "CMYK"):
                        im = im.convert("RGB")
                    pixels = np.asarray(im)
            except (OSError, SyntaxError, ValueError, EOFError) as e:
                raise CorruptMedia(f"cannot decode {self.info.format} image: {e}") from e
        if pixels.ndim == 2:
            pixels = np.repeat(pixels[:, :, None], 3, axis=2)
        return np.ascontiguousarray(pixels[:, :, :3], dtype=np.uint8)

    def _probe(self) -> None:
        with self._opened() as im:
            self._read_header(im)

    def _read_header(self, im: Image.Image) -> None:
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
            orientation = self._orientation(im)
            if orientation in (5, 6, 7, 8):
                self.info.width, self.info.height = h, w
            if orientation:
                self.info.extra["exif_orientation"] = int(orientation)
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise CorruptMedia(f"cannot read {self.info.format} image header: {e}") from e

    def _orientation(self, im: Image.Image) -> int | None:
        """The EXIF orientation. A PNG may keep EXIF after its pixels, so Pillow decodes the whole image to
        look: a cut PNG fails there. Such a file is marked truncated and probed without orientation, so that
        screening can answer for it (review: its pixels cannot be hashed) instead of refusing the upload."""
        try:
            exif = im.getexif()
        except OSError as e:
            if "truncated" not in str(e):
                raise
            self.info.extra["truncated"] = True
            return None
        value = exif.get(0x0112) if exif else None
        return int(value) if value is not None else None

    def rgb(self) -> np.ndarray:
        """The first frame as an RGB array, orientation corrected; decoded once."""
        if self._rgb is None:
            with self._opened() as opened:
                self._rgb = self._decode(opened)
        return self._rgb

    def _decode(self, im: Image.Image) -> np.ndarray:
        try:
            im.load()
            im = ImageOps.exif_transpose(im) or im
            if im.mode not in ("RGB",):
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    im = im.convert("RGBA")
                    bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(bg, im)
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8).copy()
        except (OSError, SyntaxError, ValueError, EOFError) as e:
            raise CorruptMedia(f"cannot decode {self.info.format} image: {e}") from e

    def frames(self, sampling: FrameSampling | None = None) -> Iterator[Frame]:
        yield Frame(index=0, time_s=0.0, rgb=self.rgb())

    def audio(self) -> AudioTrack | None:
        return None

    def close(self) -> None:
        self._rgb = None
