"""The identity split: no person may appear in two splits."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from deepshield.detect.training.identities import TEST_VIDEOS, identity_keys, list_corpus


def test_identity_rules_group_the_same_person() -> None:
    assert identity_keys("fr_obama-720p.jpg") == identity_keys("fr_knn_examples_train_obama_obama2.jpg")
    assert set(identity_keys("fr_knn_examples_test_obama_and_biden.jpg")) == {"obama", "biden"}
    assert identity_keys("cflfw_Abba_Eban_0001.jpg") == ["lfw:Abba_Eban"]
    assert identity_keys("vr_face2.mp4") == identity_keys("st_WDA_AlexandriaOcasioCortez_000.mp4")
    assert identity_keys("fapi_bbt3.jpg") == identity_keys("fapi_penny_penny2.png")


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
