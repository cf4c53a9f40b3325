"""The attack suite end to end on real media, at its smallest: `make-attacks` writes every attack kind as real
videos with a manifest, the face swap comes from the Detect domain's generator, and `evaluate` (in worker
processes) reports every kind with trial counts; no attack of the small suite is accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from deepshield.errors import DeepshieldError
from deepshield.liveness.attacks.suite import ATTACK_KINDS, load_manifest
from deepshield.media import open_media


def test_make_attacks_and_evaluate(shared_faces: Path, tmp_path: Path) -> None:
    from deepshield.cli.main import app

    suite = tmp_path / "suite"
    run = CliRunner().invoke
    # fmt: off
    r = run(app, ["liveness", "make-attacks", "--out", str(suite), "--faces", str(shared_faces), "--segments", "1",
                  "--photos", "2", "--genuine-variants", "1", "--other-scripts", "2", "--replays", "1",
                  "--swaps", "1", "--crafted", "1"])
    # fmt: on
    assert r.exit_code == 0, r.output
    trials = load_manifest(suite)
    kinds = {t.kind for t in trials}
    assert kinds >= {"genuine", "photo", "other_script", "no_flash", "screen_replay", "face_swap", "crafted_replay"}, (
        kinds
    )
    assert kinds <= {"genuine", *ATTACK_KINDS}
    swap = next(t for t in trials if t.kind == "face_swap")
    assert swap.meta["swapped_fraction"] > 0.5
    assert swap.id_photo != next(t for t in trials if t.kind == "genuine").id_photo  # the victim's own photo
    # The crafted replay: the stored genuine session re-edited to a full script (turn, profile, look-up warped).
    crafted = next(t for t in trials if t.kind == "crafted_replay")
    assert crafted.replay_of == next(t for t in trials if t.kind == "genuine").id
    assert {s["kind"] for s in crafted.script["steps"]} >= {"blink", "look_up"}
    assert crafted.meta["warped_frames"] > 15 and 0.12 <= crafted.meta["edit"]["crop"] <= 0.14
    for t in trials:
        m = open_media(suite / t.video)
        try:
            assert m.info.duration_s and m.info.duration_s > 2.0
        finally:
            m.close()
    # A resumed run keeps every finished unit and builds nothing again.
    before = (suite / "manifest.jsonl").read_text()
    # fmt: off
    r = run(app, ["liveness", "make-attacks", "--out", str(suite), "--faces", str(shared_faces), "--segments", "1",
                  "--photos", "2", "--resume"])
    # fmt: on
    assert r.exit_code == 0 and "0 units to build" in r.output, r.output
    assert (suite / "manifest.jsonl").read_text() == before
    # A top-up adds crafted replays up to --crafted per segment, after the ones there (kept byte for byte), with
    # scripts of their own; a second top-up to the same count adds nothing.
    top_up = ["liveness", "make-attacks", "--out", str(suite), "--faces", str(shared_faces), "--segments", "1",
              "--photos", "0", "--add-crafted", "--crafted", "2"]  # fmt: skip
    r = run(app, top_up)
    assert r.exit_code == 0, r.output
    after = (suite / "manifest.jsonl").read_text()
    assert after.startswith(before)
    added = [t for t in load_manifest(suite)[len(trials) :] if t.kind == "crafted_replay"]
    assert [t.id for t in added] == [crafted.id[:-1] + "1"] and added[0].script["nonce"] != crafted.script["nonce"]
    assert (suite / added[0].video).stat().st_size > 0
    r = run(app, top_up)
    assert r.exit_code == 0 and "0 segments to extend" in r.output, r.output
    assert (suite / "manifest.jsonl").read_text() == after
    report = tmp_path / "report.json"
    r = run(app, ["liveness", "evaluate", "--suite", str(suite), "--jobs", "2", "--report", str(report)])
    assert r.exit_code == 0, r.output
    rep = json.loads(report.read_text())
    got = {a["kind"]: a for a in rep["apcer"]}
    assert set(got) == kinds - {"genuine"}
    for a in got.values():
        assert a["errors"] == 0, (a, rep["errors"])
        assert a["trials"] >= 1 and 0 < a["upper95"] <= 1
    assert rep["bpcer"]["trials"] >= 1
    # Each crafted replay is stopped by a named signal, never only by a weak combined score; its warped turns are
    # seen as warps (issue 32 point 4).
    assert rep["review_by_score_only"].get("crafted_replay", 0) == 0, rep["failed_by"]
    assert rep["failed_by"]["crafted_replay"].get("warp", 0) >= 1, rep["failed_by"]
    # One kind at a time (the analyses are cached, so this only verifies), genuine sessions always in.
    one = tmp_path / "one.json"
    r = run(app, ["liveness", "evaluate", "--suite", str(suite), "--kinds", "crafted_replay", "--report", str(one)])
    assert r.exit_code == 0, r.output
    rep1 = json.loads(one.read_text())
    assert [a["kind"] for a in rep1["apcer"]] == ["crafted_replay"] and rep1["bpcer"] == rep["bpcer"]
    assert rep1["apcer"][0] == got["crafted_replay"]
    r = run(app, ["liveness", "evaluate", "--suite", str(suite), "--kinds", "crafted_replay,no_such_kind"])
    assert isinstance(r.exception, DeepshieldError) and "no_such_kind" in str(r.exception)


@pytest.mark.parametrize("line", ["{not json", "[1, 2]", '{"kind": "photo", "no_such_field": 1}'])
def test_a_damaged_suite_manifest_names_its_line(tmp_path: Path, line: str) -> None:
    (tmp_path / "manifest.jsonl").write_text("\n" + line + "\n")
    with pytest.raises(DeepshieldError, match="manifest.jsonl line 2: not a trial"):
        load_manifest(tmp_path)
