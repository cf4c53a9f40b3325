"""Sampled-frame throughput (seek + decode + faces) beside plain decode-every-frame on the same real video.

    .venv/bin/python benchmarks/media.py [VIDEO] [--frames 32] [--repeat 3]

Prints medians over repeats; the baseline is measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from corpus import faces_dir

from deepshield.faces import FaceAnalyzer
from deepshield.media import FrameSampling, open_media
from deepshield.media.video import VideoMedia

DEFAULT = faces_dir() / "real_videos" / "lp_d13.mp4"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("video", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    media = open_media(args.video)
    assert isinstance(media, VideoMedia), "a video is needed"
    info = media.info
    print(
        f"video: {args.video.name}  {info.width}x{info.height}  {info.duration_s:.1f} s  {info.fps:.1f} fps  "
        f"{info.frame_count} frames  codec {info.video_codec}"
    )
    analyzer = FaceAnalyzer()
    all_decode, sampled_decode, sampled_total = [], [], []
    faces_found = decoded = 0
    for _ in range(args.repeat):
        t = time.perf_counter()
        n_all = sum(1 for _ in media.decode_all())
        all_decode.append(time.perf_counter() - t)

        t = time.perf_counter()
        for _ in media.frames(FrameSampling.evenly(args.frames)):
            pass
        sampled_decode.append(time.perf_counter() - t)
        decoded = media.decoded_frames

        t = time.perf_counter()
        faces_found = 0
        for f in media.frames(FrameSampling.evenly(args.frames)):
            faces_found += len(analyzer.analyze(f.rgb, f.index, f.time_s))
        sampled_total.append(time.perf_counter() - t)
    md_all, md_dec, md_tot = (statistics.median(x) for x in (all_decode, sampled_decode, sampled_total))
    print(
        f"baseline  decode every frame : {n_all} frames in {md_all:.2f} s = {n_all / md_all:.0f} frames/s "
        f"({md_all:.2f} s per video)"
    )
    print(
        f"ours      sampled decode only : {args.frames} frames in {md_dec:.2f} s = {args.frames / md_dec:.0f} "
        f"frames/s (decoder produced {decoded} frames by seeking to keyframes)"
    )
    print(
        f"ours      sampled decode+faces: {args.frames} frames in {md_tot:.2f} s = {args.frames / md_tot:.1f} "
        f"frames/s, {faces_found} faces"
    )
    print(
        f"ratio: sampling {args.frames} frames (with faces) takes {md_tot / md_all:.2f}x the time of decoding "
        f"every frame once; decode-only sampling is {md_all / md_dec:.1f}x faster than decoding everything"
    )
    analyzer.close()


if __name__ == "__main__":
    main()
