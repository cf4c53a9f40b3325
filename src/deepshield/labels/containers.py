"""Where the `AIGC` implicit label lives in each container, read and written without touching the media data.

One codec per format behind a small protocol and a registry (JPEG, PNG, WebP: XMP in the TC260 namespace,
PNG also a tEXt chunk; MP4/MOV: a metadata key written by ffmpeg stream copy; WAV: a RIFF chunk; MP3: an
ID3v2 TXXX frame). Writers replace a previous AIGC value with the new one (a platform adding its fields)
and keep every other piece of metadata.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Protocol

from deepshield.labels import xmp
from deepshield.labels.errors import LabelError, UnsupportedLabelFormat
from deepshield.media.sniff import sniff_file


class MetadataCodec(Protocol):
    formats: tuple[str, ...]

    def read(self, path: Path) -> str | None:
        """The AIGC JSON text, or None when the file has none."""

    def write(self, src: Path, dst: Path, aigc_json: str, form: xmp.Form = "element") -> None:
        """Copy `src` to `dst` with the AIGC label set."""


_REGISTRY: dict[str, MetadataCodec] = {}


def register_codec(codec: MetadataCodec) -> MetadataCodec:
    for f in codec.formats:
        _REGISTRY[f] = codec
    return codec


def codec_for(path: Path) -> tuple[str, MetadataCodec]:
    s = sniff_file(path)
    if s is None or s.format not in _REGISTRY:
        raise UnsupportedLabelFormat(
            f"cannot carry an AIGC label in this file type ({s.format if s else 'unknown'}); "
            f"supported: {', '.join(sorted(_REGISTRY))}"
        )
    return s.format, _REGISTRY[s.format]


def read_aigc_json(path: Path) -> tuple[str | None, str]:
    """(AIGC JSON or None, where it was found)."""
    s = sniff_file(path)
    if s is not None and s.format in _REGISTRY:
        try:
            v = _REGISTRY[s.format].read(path)
        except (LabelError, struct.error, IndexError):
            v = None  # a damaged container: fall back to scanning for an XMP packet
        if v is not None:
            return v, s.format
    data = path.read_bytes()  # any other container with an XMP packet somewhere (GIF, TIFF...)
    v = xmp.read_aigc_anywhere(data)
    return v, ("xmp" if v is not None else "")


def write_aigc_json(src: Path, dst: Path, aigc_json: str, form: xmp.Form = "element") -> str:
    fmt, codec = codec_for(src)
    codec.write(src, dst, aigc_json, form)
    return fmt


# ---------------------------------------------------------------------------------------------- JPEG
_XMP_SIG = b"http://ns.adobe.com/xap/1.0/\x00"


def _jpeg_segments(data: bytes) -> tuple[list[tuple[int, int, int]], int]:
    """[(marker, start, end)] of the header segments, and the offset where the scan data begins."""
    if data[:2] != b"\xff\xd8":
        raise LabelError("not a JPEG file")
    pos = 2
    segs: list[tuple[int, int, int]] = []
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise LabelError("corrupt JPEG: marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker == 0xDA or marker == 0xD9:
            return segs, pos
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        segs.append((marker, pos, pos + 2 + length))
        pos += 2 + length
    raise LabelError("corrupt JPEG: no image data")


class JpegCodec:
    formats: tuple[str, ...] = ("jpeg",)

    def read(self, path: Path) -> str | None:
        data = path.read_bytes()
        segs, _ = _jpeg_segments(data)
        for marker, a, b in segs:
            if marker == 0xE1 and data[a + 4 : a + 4 + len(_XMP_SIG)] == _XMP_SIG:
                v = xmp.read_aigc(data[a + 4 + len(_XMP_SIG) : b].decode("utf-8", "replace"))
                if v is not None:
                    return v
        return None

    def write(self, src: Path, dst: Path, aigc_json: str, form: xmp.Form = "element") -> None:
        data = src.read_bytes()
        segs, _ = _jpeg_segments(data)
        old = next(((a, b) for m, a, b in segs if m == 0xE1 and data[a + 4 : a + 4 + len(_XMP_SIG)] == _XMP_SIG), None)
        packet = xmp.set_in_packet(
            data[old[0] + 4 + len(_XMP_SIG) : old[1]].decode("utf-8", "replace") if old else None, aigc_json, form
        )
        body = _XMP_SIG + packet.encode("utf-8")
        if len(body) + 2 > 0xFFFF:
            raise LabelError("XMP packet too large for one JPEG segment")
        seg = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
        if old:
            out = data[: old[0]] + seg + data[old[1] :]
        else:
            insert = 2
            for m, _a, b in segs:  # after the leading APP0 (JFIF) / APP1 (Exif) segments
                if m in (0xE0, 0xE1):
                    insert = b
                else:
                    break
            out = data[:insert] + seg + data[insert:]
        dst.write_bytes(out)


# ----------------------------------------------------------------------------------------------- PNG
_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes, int, int]]:
    if not data.startswith(_PNG_SIG):
        raise LabelError("not a PNG file")
    pos, out = 8, []
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        typ = data[pos + 4 : pos + 8]
        out.append((typ, data[pos + 8 : pos + 8 + n], pos, pos + 12 + n))
        pos += 12 + n
        if typ == b"IEND":
            break
    return out


def _png_chunk(typ: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + typ + body + struct.pack(">I", zlib.crc32(typ + body) & 0xFFFFFFFF)


def _png_text(typ: bytes, body: bytes) -> tuple[str, str] | None:
    """(keyword, text) of a tEXt / zTXt / iTXt chunk."""
    try:
        if typ == b"tEXt":
            k, v = body.split(b"\x00", 1)
            return k.decode("latin-1"), v.decode("latin-1")
        if typ == b"zTXt":
            k, rest = body.split(b"\x00", 1)
            return k.decode("latin-1"), zlib.decompress(rest[1:]).decode("latin-1")
        if typ == b"iTXt":
            k, rest = body.split(b"\x00", 1)
            comp = rest[0]
            _lang, rest = rest[2:].split(b"\x00", 1)
            _tk, text = rest.split(b"\x00", 1)
            return k.decode("latin-1"), (zlib.decompress(text) if comp else text).decode("utf-8")
    except (ValueError, zlib.error, IndexError):
        return None
    return None


def _itxt(keyword: str, text: str) -> bytes:
    return _png_chunk(b"iTXt", keyword.encode("latin-1") + b"\x00\x00\x00\x00\x00" + text.encode("utf-8"))


class PngCodec:
    formats: tuple[str, ...] = ("png",)

    def read(self, path: Path) -> str | None:
        chunks = _png_chunks(path.read_bytes())
        for typ, body, _a, _b in chunks:  # XMP first (the standard's place), then the text chunk
            t = _png_text(typ, body)
            if t and t[0] == "XML:com.adobe.xmp":
                v = xmp.read_aigc(t[1])
                if v is not None:
                    return v
        for typ, body, _a, _b in chunks:
            t = _png_text(typ, body)
            if t and t[0] == "AIGC":
                return t[1]
        return None

    def write(self, src: Path, dst: Path, aigc_json: str, form: xmp.Form = "element") -> None:
        data = src.read_bytes()
        chunks = _png_chunks(data)
        old_packet = None
        keep: list[bytes] = []
        for typ, body, a, b in chunks:
            t = _png_text(typ, body) if typ in (b"tEXt", b"zTXt", b"iTXt") else None
            if t and t[0] == "XML:com.adobe.xmp":
                old_packet = t[1]
                continue
            if t and t[0] == "AIGC":
                continue
            keep.append(data[a:b])
        new = _itxt("XML:com.adobe.xmp", xmp.set_in_packet(old_packet, aigc_json, form))
        new += _png_chunk(b"tEXt", b"AIGC\x00" + aigc_json.encode("latin-1"))
        out = bytearray(_PNG_SIG)
        inserted = False
        for c in keep:
            if not inserted and c[4:8] in (b"IDAT", b"IEND"):
                out += new
                inserted = True
            out += c
        dst.write_bytes(bytes(out))


# ---------------------------------------------------------------------------------------------- RIFF
def _riff_chunks(data: bytes, form: bytes) -> list[tuple[bytes, int, int]]:
    """[(fourcc, start, end incl. padding)] of the top-level chunks."""
    if data[:4] != b"RIFF" or data[8:12] != form:
        raise LabelError(f"not a RIFF {form.decode()} file")
    pos, out = 12, []
    while pos + 8 <= len(data):
        cid = data[pos : pos + 4]
        (n,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        end = min(len(data), pos + 8 + n + (n & 1))
        out.append((cid, pos, end))
        pos = end
    return out


def _riff_chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) & 1 else b"")


def _riff(form: bytes, chunks: list[bytes]) -> bytes:
    body = form + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


class WavCodec:
    formats: tuple[str, ...] = ("wav", "avi")

    def _form(self, data: bytes) -> bytes:
        return data[8:12]

    def read(self, path: Path) -> str | None:
        data = path.read_bytes()
        for cid, a, _b in _riff_chunks(data, self._form(data)):
            if cid == b"AIGC":
                (n,) = struct.unpack("<I", data[a + 4 : a + 8])
                return data[a + 8 : a + 8 + n].rstrip(b"\x00").decode("utf-8", "replace")
        return None

    def write(self, src: Path, dst: Path, aigc_json: str, form: xmp.Form = "element") -> None:
        data = src.read_bytes()
        fm = self._form(data)
        chunks = [data[a:b] for cid, a, b in _riff_chunks(data, fm) if cid != b"AIGC"]
        chunks.append(_riff_chunk(b"AIGC", aigc_json.encode("utf-8")))
        dst.write_bytes(_riff(fm, chunks))


class WebpCodec:
    formats: tuple[str, ...] = ("webp",)

    def read(self, path: Path) -> str | None:
        data = path.read_bytes()
        for cid, a, b in _riff_chunks(data, b"WEBP"):
            if cid == b"XMP ":
                v = xmp.read_aigc(data[a + 8 : b].decode("utf-8", "replace"))
                if v is not None:
                    return v
        return None

    def write(self, src: Path, dst: Path, aigc_json: str, form: xmp.Form = "element") -> None:
        data = src.read_bytes()
        chunks = _riff_chunks(data, b"WEBP")
        old = next((data[a + 8 : b] for cid, a, b in chunks if cid == b"XMP "), None)
        packet = xmp.set_in_packet(old.decode("utf-8", "replace") if old else None, aigc_json, form)
        parts = [data[a:b] for cid, a, b in chunks if cid != b"XMP "]
        if chunks and chunks[0][0] == b"VP8X":
            head = bytearray(parts[0])
            head[8] |= 0x04  # XMP present
            parts[0] = bytes(head)
        else:  # simple format: an extended header is needed to carry metadata
            from PIL import Image

            with Image.open(src) as im:
                w, h = im.size
                alpha = 0x10 if ("A" in im.mode or "transparency" in im.info) else 0
            vp8x = bytes([0x04 | alpha, 0, 0, 0]) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
            parts.insert(0, _riff_chunk(b"VP8X", vp8x))
        parts.append(_riff_chunk(b"XMP ", packet.encode("utf-8")))
        dst.write_bytes(_riff(b"WEBP", parts))


# ----------------------------------------------------------------------------------------------- MP3
def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def _unsyncsafe(b: bytes) -> int:
    return (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]


def _id3_frames(data: bytes) -> tuple[int, list[tuple[bytes, bytes, bytes]], int]:
    """(major version, [(id, flags, body)], tag length incl. header) of a leading ID3v2 tag; (0, [], 0) if none."""
    if data[:3] != b"ID3" or len(data) < 10:
        return 0, [], 0
    ver, flags = data[3], data[5]
    size = _unsyncsafe(data[6:10])
    end = 10 + size + (10 if flags & 0x10 else 0)
    if ver not in (3, 4) or flags & 0x80:  # unsynchronised tags: keep them whole, add ours in front
        return ver, [], end
    pos = 10
    if flags & 0x40:  # extended header
        ext = _unsyncsafe(data[10:14]) if ver == 4 else struct.unpack(">I", data[10:14])[0] + 4
        pos += ext
    frames = []
    while pos + 10 <= 10 + size and data[pos] != 0:
        fid = data[pos : pos + 4]
        n = _unsyncsafe(data[pos + 4 : pos + 8]) if ver == 4 else struct.unpack(">I", data[pos + 4 : pos + 8])[0]
        frames.append((fid, data[pos + 8 : pos + 10], data[pos + 10 : pos + 10 + n]))
        pos += 10 + n
    return ver, frames, end


def _txxx(body: bytes) -> tuple[str, str] | None:
    if not body:
        return None
    enc, rest = body[0], body[1:]
    try:
        if enc in (1, 2):
            codec = "utf-16" if enc == 1 else "utf-16-be"
            i = next(i for i in range(0, len(rest) - 1, 2) if rest[i : i + 2] == b"\x00\x00")
            return rest[:i].decode(codec), rest[i + 2 :].decode(codec).rstrip("\x00")
        d, v = rest.split(b"\x00", 1)
        c = "utf-8" if enc == 3 else "latin-1"
        return d.decode(c), v.decode(c).rstrip("\x00")
    except (StopIteration, ValueError, UnicodeDecodeError):
        return None


class Mp3Codec:
    formats: tuple[str, ...] = ("mp3",)

    def read(self, path: Path) -> str | None:
        with open(path, "rb") as f:
            head = f.read(10)
            if head[:3] != b"ID3":
                return None
            data = head + f.read(_unsyncsafe(head[6:10]) + 10)
        while data[:3] == b"ID3":
            _v, frames, end = _id3_frames(data)
            for fid, _fl, body in frames:
                t = _txxx(body) if fid == b"TXXX" else None
                if t and t[0] == "AIGC":
                    return t[1]
            if end <= 0:
                break
            data = data[end:]
        return None

    def write(self, src: Path, dst: Path, aigc_json: str, form: xmp.Form = "element") -> None:
        data = src.read_bytes()
        ver, frames, end = _id3_frames(data)
        frame_body = b"\x00AIGC\x00" + aigc_json.encode("latin-1")
        if ver in (3, 4) and end and (frames or _unsyncsafe(data[6:10]) == 0 or not (data[5] & 0x80)):
            kept = [(f, fl, b) for f, fl, b in frames if not (f == b"TXXX" and (_txxx(b) or ("",))[0] == "AIGC")]
            kept.append((b"TXXX", b"\x00\x00", frame_body))
            enc = _syncsafe if ver == 4 else (lambda n: struct.pack(">I", n))
            body = b"".join(f + enc(len(b)) + fl + b for f, fl, b in kept) + b"\x00" * 64  # padding
            tag = b"ID3" + bytes([ver, 0, 0]) + _syncsafe(len(body)) + body
            dst.write_bytes(tag + data[end:])
        else:
            body = b"TXXX" + struct.pack(">I", len(frame_body)) + b"\x00\x00" + frame_body + b"\x00" * 64
            dst.write_bytes(b"ID3\x03\x00\x00" + _syncsafe(len(body)) + body + data)


# ----------------------------------------------------------------------------------------------- MP4
class Mp4Codec:
    """A `AIGC` key in the moov/udta/meta key list, written by ffmpeg stream copy (no re-encoding)."""

    formats: tuple[str, ...] = ("mp4", "mov", "m4a")

    def read(self, path: Path) -> str | None:
        import av

        try:
            with av.open(str(path)) as c:
                v = c.metadata.get("AIGC") or c.metadata.get("aigc")
        except av.FFmpegError:
            v = None
        if v:
            return str(v)
        return xmp.read_aigc_anywhere(path.read_bytes())

    def write(self, src: Path, dst: Path, aigc_json: str, form: xmp.Form = "element") -> None:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            raise LabelError("ffmpeg is needed to write MP4 metadata without re-encoding (apt-get install ffmpeg)")
        with tempfile.TemporaryDirectory() as td:
            out = Path(td) / ("out" + (dst.suffix or ".mp4"))
            # fmt: off
            cmd = [
                ffmpeg, "-v", "error", "-y", "-i", str(src), "-map", "0", "-c", "copy", "-map_metadata", "0",
                "-movflags", "use_metadata_tags", "-metadata", f"AIGC={aigc_json}", "-f", "mp4", str(out),
            ]
            # fmt: on
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if p.returncode != 0:
                raise LabelError(f"ffmpeg could not copy the MP4 with its label: {p.stderr.strip()[:300]}")
            shutil.move(str(out), dst)


for _c in (JpegCodec(), PngCodec(), WebpCodec(), WavCodec(), Mp3Codec(), Mp4Codec()):
    register_codec(_c)


def supported_formats() -> list[str]:
    return sorted(_REGISTRY)


def pretty(aigc_json: str) -> str:
    return json.dumps(json.loads(aigc_json), indent=2)
