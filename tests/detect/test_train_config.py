"""Training configs: `extends` chains, key checks, and the committed stage configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="training needs the 'train' extra (torch)")

from deepshield.config import get_settings, work_path  # noqa: E402
from deepshield.detect.training.train import CONFIG_KEYS, config_path, load_config  # noqa: E402
from deepshield.errors import DeepshieldError  # noqa: E402
from tests.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_extends_overrides_key_by_key_and_replaces_lists(tmp_path: Path) -> None:
    _write(
        tmp_path / "base.toml",
        "[model]\nwidths = [8, 8, 16, 16]\nblocks = [1, 1, 1, 1]\n[sbi]\njpeg_min = 40\ncross_prob = 0.5\n"
        "[train]\nseed = 1\nlr = 0.003\n",
    )
    _write(tmp_path / "mid.toml", 'extends = "base.toml"\n[train]\nlr = 0.001\n')
    sub = tmp_path / "stages"
    sub.mkdir()
    child = _write(sub / "child.toml", 'extends = "../mid.toml"\n[model]\nblocks = [2, 2]\n[sbi]\ncross_prob = 0.0\n')
    cfg = load_config(child)
    assert "extends" not in cfg
    assert cfg["model"] == {"widths": [8, 8, 16, 16], "blocks": [2, 2]}  # a list is replaced, not merged
    assert cfg["sbi"] == {"jpeg_min": 40, "cross_prob": 0.0}
    assert cfg["train"] == {"seed": 1, "lr": 0.001}  # the middle file's override survives the chain
    assert cfg["data"] == {}


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.toml": 'extends = "b.toml"\n', "b.toml": 'extends = "a.toml"\n'}, "in a loop"),
        ({"a.toml": 'extends = "a.toml"\n'}, "in a loop"),
        ({"a.toml": 'extends = "missing.toml"\n'}, "no config file"),
        ({"a.toml": "extends = 3\n"}, "extends must be a file name"),
        ({"a.toml": "[train\nlr = 1\n"}, "not valid TOML"),
        ({"a.toml": "[sbi]\npart_mask_porb = 0.25\n"}, "unknown config keys: [sbi] part_mask_porb"),
        ({"a.toml": "[trian]\nlr = 0.1\n"}, "unknown config keys: trian"),
        ({"a.toml": "sbi = 3\n"}, "must be a [sbi] table"),
    ],
)
def test_bad_configs_are_clear_errors(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        _write(tmp_path / name, text)
    with pytest.raises(DeepshieldError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(tmp_path / "a.toml")


def test_a_misspelt_key_in_an_extended_file_is_caught(tmp_path: Path) -> None:
    _write(tmp_path / "base.toml", "[train]\nlearning_rate = 0.1\n")
    child = _write(tmp_path / "child.toml", 'extends = "base.toml"\n[train]\nlr = 0.1\n')
    with pytest.raises(DeepshieldError, match="learning_rate"):
        load_config(child)


def test_the_train_command_reports_a_bad_config_in_one_line(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.toml", "[sbi]\nopacity = 2\n")
    res = run_cli("train", "--config", str(bad), "--out", str(tmp_path / "run"), timeout=120)
    assert res.returncode != 0 and "Traceback" not in res.stderr and "unknown config keys" in res.stderr
    assert not (tmp_path / "run").exists()


def test_every_committed_config_loads_and_the_shipped_model_records_its_own() -> None:
    configs = {p.stem: load_config(p) for p in sorted(CONFIGS.glob("*.toml"))}
    assert len(configs) >= 2
    # Each shipped model's metadata holds the config it was trained with; its config file must still resolve to it
    # (version 5 from configs/sbi_mnv2.toml; version 4, kept as the baseline, from its last stage's file).
    models = ROOT / "src" / "deepshield" / "models"
    shipped = json.loads((models / "sbi_small.json").read_text())
    assert configs["sbi_mnv2"] == shipped["config"] and shipped["version"] == "5"
    assert configs["sbi_small_ft3"] == json.loads((models / "v4" / "sbi_small.json").read_text())["config"]
    # A stage built on version 4 differs from version 4's recipe only where its file says so.
    v4, stage11 = configs["sbi_small_ft3"], configs["sbi_small_ft9"]
    assert stage11["model"] == v4["model"] and stage11["data"] == v4["data"]
    assert stage11["sbi"] == {**v4["sbi"], "part_mask_prob": 0.25}


def test_a_value_of_the_wrong_kind_is_refused_when_the_file_is_read(tmp_path: Path) -> None:
    cfg = _write(
        tmp_path / "a.toml",
        '[model]\nwidths = [24, "x"]\n[train]\nepochs = "ten"\nlr = true\nout_dir = ""\n[sbi]\njpeg_min = 40.5\n',
    )
    with pytest.raises(DeepshieldError) as err:
        load_config(cfg)
    for part in (
        "[model] widths must be a list of integers, got [24, 'x']",
        "[train] epochs must be an integer, got 'ten'",
        "[train] lr must be a number, got True",
        "[train] out_dir must be a non-empty string",
        "[sbi] jpeg_min must be an integer, got 40.5",
    ):
        assert part in err.value.message
    ok = _write(tmp_path / "b.toml", "[train]\nlr = 1\nweight_decay = 0.0005\n")  # an integer is a number
    assert load_config(ok)["train"]["lr"] == 1


def test_work_paths_lie_under_the_work_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSHIELD_WORK", str(tmp_path / "work"))
    get_settings.cache_clear()
    try:
        assert work_path("{work}/detect/faces") == tmp_path / "work" / "detect" / "faces"
        assert work_path("/elsewhere/run") == Path("/elsewhere/run")
        assert work_path("runs/x") == Path("runs/x")
        monkeypatch.delenv("DEEPSHIELD_WORK")
        monkeypatch.setenv("DEEPSHIELD_HOME", str(tmp_path / "home"))
        get_settings.cache_clear()
        assert get_settings().face_cache_dir == tmp_path / "home" / "work" / "detect" / "faces"
    finally:
        get_settings.cache_clear()


def test_committed_configs_name_no_machine_paths() -> None:
    """Every path in a committed config is under {work}/ (or names a shipped weights file under {models}/), so the
    configs run on any machine."""
    for p in sorted(CONFIGS.glob("*.toml")):
        cfg = load_config(p)
        for section, keys in CONFIG_KEYS.items():
            for key, kind in keys.items():
                if kind == "path" and key in cfg[section]:
                    value = cfg[section][key]
                    assert value.startswith(("{work}/", "{models}/")), (p.name, key, value)
                    if value.startswith("{models}/"):
                        assert config_path(value).is_file(), (p.name, key, value)  # names a file that ships


def test_models_prefix_names_the_shipped_weights_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSHIELD_MODELS_DIR", str(tmp_path))
    assert config_path("{models}/sbi_small.onnx") == tmp_path / "sbi_small.onnx"
    assert config_path("elsewhere/sbi_small.onnx") == Path("elsewhere/sbi_small.onnx")
