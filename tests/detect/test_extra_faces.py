"""scripts/extra-faces.sh: the extra real videos rebuilt from local clones at pinned commits (issue 27 point 5)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deepshield.media import open_media

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "extra-faces.sh"

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("git") is None, reason="needs ffmpeg and git"
)


def _git(repo: Path, *args: str) -> str:
    cmd = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


def _clip(path: Path, *codec: str) -> None:
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=96x96:rate=25:duration=1",
            *codec,
            str(path),
        ],
        check=True,
    )


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Path, str]:
    """One clone, acme/faces, with an MPEG-1 program stream and an MP4 committed, then both removed."""
    repo = tmp_path / "clones" / "acme" / "faces"
    (repo / "clips").mkdir(parents=True)
    _git(repo, "init", "-q")
    _clip(repo / "clips" / "s1.mpg", "-c:v", "mpeg1video", "-f", "mpeg")
    _clip(repo / "clips" / "w.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "clips")
    commit = _git(repo, "rev-parse", "HEAD")
    _git(repo, "rm", "-q", "-r", "clips")
    _git(repo, "commit", "-q", "-m", "gone")  # the list's commit still has them
    return tmp_path / "clones", commit


def _list(tmp_path: Path, commit: str, repo: str = "acme/faces") -> Path:
    rows = [
        "# comment",
        "file\trepo\tcommit\tpath\trepo_licence\tmedia_licence\tperson",
        f"grid_s1_a.mp4\t{repo}\t{commit}\tclips/s1.mpg\tMIT\tCC-BY 4.0\tgrid_s1",
        f"pf_w.mp4\t{repo}\t{commit}\tclips/w.mp4\tMIT\tPexels\tpf_w",
    ]
    path = tmp_path / "list.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path


def _run(*args: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_rebuilds_each_listed_file_at_its_commit_recoding_mpeg1_to_mp4(
    clones: tuple[Path, str], tmp_path: Path
) -> None:
    root, commit = clones
    listed = _list(tmp_path, commit)
    res = _run(root, tmp_path / "out", listed)
    assert res.returncode == 0, res.stderr
    assert "2 videos" in res.stdout
    made = tmp_path / "out" / "real_videos"
    assert sorted(p.name for p in made.iterdir()) == ["grid_s1_a.mp4", "pf_w.mp4"]
    # The MP4 is the committed blob, byte for byte; the MPEG-1 stream became an MP4 the media reader opens.
    blob = subprocess.run(
        ["git", "-C", str(root / "acme" / "faces"), "show", f"{commit}:clips/w.mp4"], capture_output=True, check=True
    ).stdout
    assert (made / "pf_w.mp4").read_bytes() == blob
    media = open_media(made / "grid_s1_a.mp4")
    try:
        assert media.info.format == "mp4" and (media.info.frame_count or 0) >= 20 and media.info.video_codec == "h264"
    finally:
        media.close()
    # A second run gives the same bytes (the training data cannot drift).
    first = (made / "grid_s1_a.mp4").read_bytes()
    assert _run(root, tmp_path / "out", listed).returncode == 0
    assert (made / "grid_s1_a.mp4").read_bytes() == first


def test_a_missing_clone_or_commit_is_one_clear_error(clones: tuple[Path, str], tmp_path: Path) -> None:
    root, commit = clones
    res = _run(root, tmp_path / "out", _list(tmp_path, commit, repo="acme/absent"))
    assert res.returncode == 1 and "no git clone of acme/absent" in res.stderr
    res = _run(root, tmp_path / "out", _list(tmp_path, "0" * 40))
    assert res.returncode == 1 and "has no clips/s1.mpg at 0000000000" in res.stderr
    res = _run(root)
    assert res.returncode == 2 and "usage" in res.stderr
