"""The identity split: no person may appear in two splits."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from deepshield.detect.training.identities import TEST_VIDEOS, identity_keys, list_corpus

ROOT = Path(__file__).resolve().parents[2]


def test_identity_rules_group_the_same_person() -> None:
    assert identity_keys("fr_obama-720p.jpg") == identity_keys("fr_knn_examples_train_obama_obama2.jpg")
    assert set(identity_keys("fr_knn_examples_test_obama_and_biden.jpg")) == {"obama", "biden"}
    assert identity_keys("cflfw_Abba_Eban_0001.jpg") == ["lfw:Abba_Eban"]
    assert identity_keys("vr_face2.mp4") == identity_keys("st_WDA_AlexandriaOcasioCortez_000.mp4")
    assert identity_keys("fapi_bbt3.jpg") == identity_keys("fapi_penny_penny2.png")
    # The extra videos (configs/extra_real_videos.tsv) name the GRID speaker: one person, many sentences.
    assert identity_keys("grid_s1_bbaf2n.mp4") == identity_keys("grid_s1_brwg9a.mp4") == ["grid:s1"]
    assert identity_keys("grid_c_pwij3p.mp4") != identity_keys("grid_s1_bbaf2n.mp4")


def test_split_is_by_identity_and_deterministic(shared_faces: Path) -> None:
    items = list_corpus(shared_faces)
    splits: dict[str, set[str]] = defaultdict(set)
    for it in items:
        splits[it.group].add(it.split)
    assert all(len(s) == 1 for s in splits.values()), "an identity group spans two splits"
    by_name = {it.path.name: it for it in items}
    # Group photos join their people's groups; df_ pairs marked "Yes" share a split.
    assert by_name["fr_knn_examples_test_obama_and_biden.jpg"].split == by_name["fr_obama-720p.jpg"].split
    assert by_name["fr_biden.jpg"].split == by_name["fr_obama-720p.jpg"].split
    assert by_name["df_img16.jpg"].group == by_name["df_img17.jpg"].group
    assert {by_name[v].split for v in TEST_VIDEOS} == {"test"}
    counts = {s: sum(1 for it in items if it.split == s) for s in ("train", "val", "test")}
    assert counts["train"] > 5 * counts["test"] > 0 and counts["val"] > 0
    assert [(i.rel, i.split) for i in list_corpus(shared_faces)] == [(i.rel, i.split) for i in items]


def test_extra_videos_list_names_a_commit_licences_and_the_person_of_each_file() -> None:
    """configs/extra_real_videos.tsv is what scripts/extra-faces.sh rebuilds and the model card cites: each file
    must be pinned to a commit, carry both licences, and split with its person."""
    import re

    lines = [line for line in (ROOT / "configs" / "extra_real_videos.tsv").read_text().splitlines() if line[:1] != "#"]
    header, rows = lines[0].split("\t"), [line.split("\t") for line in lines[1:]]
    assert header == ["file", "repo", "commit", "path", "repo_licence", "media_licence", "person"]
    assert rows and all(len(r) == len(header) for r in rows)
    assert len({r[0] for r in rows}) == len(rows)
    for file, repo, commit, path, repo_licence, media_licence, person in rows:
        assert re.fullmatch(r"[0-9a-f]{40}", commit) and "/" in repo and path
        assert repo_licence in {"MIT", "Apache-2.0", "BSD-3-Clause"} and media_licence
        keys = identity_keys(file)
        assert keys == (["grid:" + person.removeprefix("grid_")] if file.startswith("grid_") else [person.lower()])
