"""Video and audio through PyAV, sampled by seeking to keyframes rather than decoding every frame."""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from fractions import Fraction

import av
import numpy as np

from deepshield.errors import CorruptMedia, DecodeTimeout, MediaTooLarge
from deepshield.media.limits import MediaLimits
from deepshield.media.types import AudioTrack, Frame, FrameSampling, MediaInfo

_AV_ERRORS: tuple[type[BaseException], ...] = (av.error.FFmpegError, OSError, ValueError, EOFError, IndexError)


def _open_container(path: str) -> av.container.InputContainer:
    try:
        return av.open(path, mode="r", metadata_errors="ignore")
    except _AV_ERRORS as e:
        raise CorruptMedia(f"cannot open video container: {_short(e)}") from e


def _decode_stream(
    c: av.container.InputContainer, fps: float | None
) -> tuple[av.video.stream.VideoStream, Fraction, float, float]:
    """The first video stream set up for threaded decoding, with its clock (time base, start time, frame rate),
    the same for sampled and full decoding so that both give a frame the same time and index."""
    vs = c.streams.video[0]
    vs.thread_type = "AUTO"
    tb = vs.time_base or Fraction(1, 1000)
    start = float(vs.start_time * tb) if vs.start_time is not None else 0.0
    return vs, tb, start, fps or 25.0


def _decoder_lag(cc: av.video.codeccontext.VideoCodecContext) -> int:
    """Frames a decoder may hold between taking a packet and giving out its frame: its frame threads and its
    reordering delay."""
    return max(1, int(cc.thread_count or 1)) + max(2, int(getattr(cc, "delay", 0) or 0))


def _short(e: BaseException) -> str:
    """The decoder's reason in one line: PyAV's `strerror` without its errno and echoed path where it has one."""
    reason = getattr(e, "strerror", None)
    text = reason if isinstance(reason, str) and reason.strip() else str(e).strip()
    text = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return text[:200]


class VideoMedia:
    def __init__(self, info: MediaInfo, limits: MediaLimits) -> None:
        self.info = info
        self._limits = limits
        self._keyframes: list[float] | None = None
        #: Frames the decoder produced during the last `frames()` call (sampling cost, for tests and benchmarks).
        self.decoded_frames = 0
        self._probe()

    def _probe(self) -> None:
        c = _open_container(self.info.path)
        try:
            vstreams = c.streams.video
            astreams = c.streams.audio
            if not vstreams:
                raise CorruptMedia("video file has no video stream")
            vs = vstreams[0]
            cc = vs.codec_context
            w, h = int(cc.width or 0), int(cc.height or 0)
            if w <= 0 or h <= 0:
                raise CorruptMedia("video stream has no frame size")
            if w * h > self._limits.max_pixels:
                raise MediaTooLarge(f"video frames are {w}x{h}, over the pixel limit")
            fps = float(vs.average_rate) if vs.average_rate else (float(vs.guessed_rate) if vs.guessed_rate else None)
            duration = None
            if vs.duration is not None and vs.time_base is not None:
                duration = float(vs.duration * vs.time_base)
            elif c.duration is not None:
                duration = c.duration / 1_000_000
            frames = int(vs.frames) if vs.frames else (int(round(duration * fps)) if duration and fps else None)
            if duration is None or duration <= 0:
                # Some containers (raw WebM from MediaRecorder) carry no duration: find it from the packets.
                duration = self._duration_from_packets(c, vs)
                if fps and duration:
                    frames = int(round(duration * fps))
            if duration is not None and duration > self._limits.max_duration_s:
                raise MediaTooLarge(
                    f"video is {duration:.0f} s long, over the limit of {self._limits.max_duration_s:.0f} s"
                )
            if frames is not None and frames > self._limits.max_frames:
                raise MediaTooLarge(f"video has {frames} frames, over the limit of {self._limits.max_frames}")
            self.info.width, self.info.height = w, h
            self.info.fps = fps
            self.info.duration_s = duration
            self.info.frame_count = frames
            self.info.video_codec = cc.name
            self.info.has_audio = bool(astreams)
            self.info.audio_codec = astreams[0].codec_context.name if astreams else None
            rotation = _rotation(vs)
            if rotation:
                self.info.extra["rotation"] = rotation
                if rotation in (90, 270):
                    self.info.width, self.info.height = h, w
        except _AV_ERRORS as e:
            raise CorruptMedia(f"cannot read video stream: {_short(e)}") from e
        finally:
            c.close()

    def _duration_from_packets(self, c: av.container.InputContainer, vs: av.video.stream.VideoStream) -> float | None:
        last = None
        deadline = time.monotonic() + self._limits.decode_timeout_s
        for pkt in c.demux(vs):
            if pkt.pts is not None:
                last = pkt.pts
            if time.monotonic() > deadline:
                raise DecodeTimeout("reading the video's packets took longer than the decode time limit")
        c.seek(0)
        if last is None or vs.time_base is None:
            return None
        return float(last * vs.time_base)

    def keyframe_times(self) -> list[float]:
        """Keyframe timestamps from one pass over the packets (demuxing only, no decoding)."""
        if self._keyframes is None:
            c = _open_container(self.info.path)
            deadline = time.monotonic() + self._limits.decode_timeout_s
            times: list[float] = []
            try:
                vs = c.streams.video[0]
                tb = vs.time_base or Fraction(1, 1000)
                for pkt in c.demux(vs):
                    if pkt.is_keyframe and pkt.pts is not None:
                        times.append(float(pkt.pts * tb))
                    if time.monotonic() > deadline:
                        raise DecodeTimeout("indexing the video took longer than the decode time limit")
            except _AV_ERRORS as e:
                raise CorruptMedia(f"cannot read video packets: {_short(e)}") from e
            finally:
                c.close()
            self._keyframes = sorted(set(times))
        return self._keyframes

    def frames(self, sampling: FrameSampling | None = None) -> Iterator[Frame]:
        """Decode the frames nearest the sampled times; seek whenever a keyframe lies between here and there."""
        sampling = sampling or FrameSampling()
        duration = self.info.duration_s or 0.0
        targets = sampling.target_times(duration)
        keyframes = self.keyframe_times()
        self.decoded_frames = 0
        deadline = time.monotonic() + self._limits.decode_timeout_s
        c = _open_container(self.info.path)
        try:
            vs, tb, start, fps = _decode_stream(c, self.info.fps)
            decoder: Iterator[av.VideoFrame] | None = None
            last_time = -1e9
            for target in targets:
                t_abs = start + target
                # Seek when a keyframe sits after our position and at or before the target.
                k = bisect.bisect_right(keyframes, t_abs) - 1
                if decoder is None or (k >= 0 and keyframes[k] > last_time + 1e-6):
                    c.seek(int(t_abs / tb), stream=vs, backward=True, any_frame=False)
                    decoder = c.decode(vs)
                chosen: av.VideoFrame | None = None
                cc = vs.codec_context
                while True:
                    if time.monotonic() > deadline:
                        raise DecodeTimeout(
                            f"decoding took longer than the limit of {self._limits.decode_timeout_s:.0f} s"
                        )
                    try:
                        frame = next(decoder)
                        self.decoded_frames += 1
                    except StopIteration:
                        break
                    ft = float(frame.pts * tb) if frame.pts is not None else last_time + 1.0 / fps
                    last_time = ft
                    chosen = frame
                    if ft + 0.5 / fps >= t_abs:
                        break
                    # Far from the target, frames nobody references (most B-frames) need not be decoded at all;
                    # near it, decode everything so the frame we return is the nearest one. "Near" counts the
                    # frames the decoder holds back (one per frame thread, plus B-frame reordering): a packet is
                    # skipped as it goes in, that many frames before its neighbours come out, so a window of
                    # 2.5 frames let the nearest frame be skipped and the one after it returned.
                    far = t_abs - ft > (2.5 + _decoder_lag(cc)) / fps
                    if cc.skip_frame != ("NONREF" if far else "DEFAULT"):
                        cc.skip_frame = "NONREF" if far else "DEFAULT"
                if chosen is None:
                    break
                yield self._to_frame(chosen, tb, start, fps, target)
        except _AV_ERRORS as e:
            raise CorruptMedia(f"video decoding failed: {_short(e)}") from e
        finally:
            c.close()

    def _to_frame(self, frame: av.VideoFrame, tb: Fraction, start: float, fps: float, fallback_t: float) -> Frame:
        """RGB pixels turned upright, with time measured from the stream's start (both decode paths agree)."""
        rgb: np.ndarray = frame.to_ndarray(format="rgb24")
        rotation = self.info.extra.get("rotation")
        if rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=-int(rotation) // 90))
        t = float(frame.pts * tb) - start if frame.pts is not None else fallback_t
        return Frame(index=int(round(t * fps)), time_s=max(0.0, t), rgb=rgb)

    def decode_all(self) -> Iterator[Frame]:
        """Every frame, in order: the naive baseline, and what a re-hash of a short clip may want."""
        deadline = time.monotonic() + self._limits.decode_timeout_s
        c = _open_container(self.info.path)
        try:
            vs, tb, start, fps = _decode_stream(c, self.info.fps)
            for i, frame in enumerate(c.decode(vs)):
                if time.monotonic() > deadline:
                    raise DecodeTimeout("decoding took longer than the decode time limit")
                yield self._to_frame(frame, tb, start, fps, i / fps)
        except _AV_ERRORS as e:
            raise CorruptMedia(f"video decoding failed: {_short(e)}") from e
        finally:
            c.close()

    def audio(self) -> AudioTrack | None:
        return decode_audio(self.info.path, self._limits)

    def close(self) -> None:
        pass


class AudioMedia:
    """Audio-only files (WAV, MP3, M4A) for the labelling domain."""

    def __init__(self, info: MediaInfo, limits: MediaLimits) -> None:
        self.info = info
        self._limits = limits
        c = _open_container(info.path)
        try:
            if not c.streams.audio:
                raise CorruptMedia("audio file has no audio stream")
            a = c.streams.audio[0]
            info.audio_codec = a.codec_context.name
            info.has_audio = True
            if a.duration is not None and a.time_base is not None:
                info.duration_s = float(a.duration * a.time_base)
            elif c.duration is not None:
                info.duration_s = c.duration / 1_000_000
            if info.duration_s and info.duration_s > limits.max_duration_s:
                raise MediaTooLarge(f"audio is {info.duration_s:.0f} s long, over the limit")
            info.extra["sample_rate"] = a.codec_context.sample_rate
            info.extra["channels"] = a.codec_context.channels
        except _AV_ERRORS as e:
            raise CorruptMedia(f"cannot read audio stream: {_short(e)}") from e
        finally:
            c.close()

    def frames(self, sampling: FrameSampling | None = None) -> Iterator[Frame]:
        return iter(())

    def audio(self) -> AudioTrack | None:
        return decode_audio(self.info.path, self._limits)

    def close(self) -> None:
        pass


def decode_audio(path: str, limits: MediaLimits) -> AudioTrack | None:
    c = _open_container(path)
    deadline = time.monotonic() + limits.decode_timeout_s
    try:
        if not c.streams.audio:
            return None
        a = c.streams.audio[0]
        chunks: list[np.ndarray] = []
        total = 0
        rate = int(a.codec_context.sample_rate or 0)
        resampler = av.AudioResampler(format="flt", layout=a.codec_context.layout.name or "stereo", rate=rate)
        for frame in c.decode(a):
            for out in resampler.resample(frame):
                arr = out.to_ndarray()  # (1, n*channels) packed float
                ch = len(out.layout.channels)
                chunks.append(arr.reshape(-1, ch))
                total += chunks[-1].shape[0]
            if total > limits.max_audio_samples:
                raise MediaTooLarge("audio track is longer than the sample limit")
            if time.monotonic() > deadline:
                raise DecodeTimeout("audio decoding took longer than the decode time limit")
        if not chunks:
            return AudioTrack(sample_rate=rate, samples=np.zeros((0, 1), np.float32))
        return AudioTrack(sample_rate=rate, samples=np.concatenate(chunks).astype(np.float32))
    except _AV_ERRORS as e:
        raise CorruptMedia(f"audio decoding failed: {_short(e)}") from e
    finally:
        c.close()


def _rotation(vs: av.video.stream.VideoStream) -> int:
    """Display rotation from side data or the legacy `rotate` tag, normalised to 0/90/180/270."""
    try:
        rot = vs.metadata.get("rotate")
        if rot is not None:
            return int(rot) % 360
    except (AttributeError, ValueError):
        pass
    return 0
