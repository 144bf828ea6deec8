"""Configs: named presets, flags with help, and every field checked before anything runs."""

import dataclasses

import pytest

from experiments import baseline, ladder, locality, resolution, spatial, templates, translation
from mnist_linear import config as configs

EXPERIMENTS = (baseline, ladder, locality, resolution, spatial, templates, translation)


@pytest.mark.parametrize("module", EXPERIMENTS, ids=lambda m: m.__name__)
def test_every_experiment_has_the_three_presets_and_they_pass_the_checks(module):
    assert tuple(module.Config.PRESETS) == configs.PRESET_NAMES
    for preset in configs.PRESET_NAMES:
        config = configs.build(module.Config, preset)
        for name, value in module.Config.PRESETS[preset].items():
            assert getattr(config, name) == value
    assert configs.build(module.Config, "quick").seeds <= 2


@pytest.mark.parametrize("module", EXPERIMENTS, ids=lambda m: m.__name__)
def test_every_flag_has_help_with_its_default(module, capsys):
    with pytest.raises(SystemExit):
        module.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--preset {quick,cpu,gpu}" in text
    for field in dataclasses.fields(module.Config):
        flag = "--" + field.name.replace("_", "-")
        assert flag in text and f"(default: {field.default!r};" in text, flag


def test_explicit_flags_apply_on_top_of_the_preset(tmp_path):
    config, out, preset = configs.parse(ladder.Config, "", ["--out", str(tmp_path), "--quick", "--seeds", "3"])
    assert preset == "quick" and config.seeds == 3 and config.epochs == 1 and out == tmp_path
    config, _, preset = configs.parse(ladder.Config, "", ["--out", str(tmp_path), "--preset", "gpu"])
    assert preset == "gpu" and config.large_widths == (32, 64)


@pytest.mark.parametrize("flags, message", [
    (["--learning-rates", "0", "0.1"], "learning_rates must be > 0"),
    (["--deep-learning-rate", "-0.1"], "deep_learning_rate must be > 0"),
    (["--seeds", "0"], "seeds must be ≥ 1"),
    (["--seeds", "-1"], "seeds must be ≥ 1"),
    (["--epochs", "0"], "epochs must be ≥ 1"),
    (["--batch-size", "0"], "batch_size must be ≥ 1"),
    (["--models-at-once=-1"], "models_at_once must be ≥ 0"),
    (["--weight-decays=-1e-4"], "weight_decays must be ≥ 0"),
    (["--dataset", "cifar10"], "dataset must be one of"),
    (["--max-shift", "28"], r"max_shift must be in \[0, 27\]"),
    (["--max-shift", "2"], "max_shift must be at least 3"),
    (["--momentum", "1.5"], r"momentum must be in \[0, 1\)"),
])
def test_bad_values_are_refused_with_the_field_named(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit):
        configs.parse(translation.Config, "", ["--out", str(tmp_path), "--quick", *flags])
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)


def test_out_must_be_a_writable_folder(tmp_path, capsys):
    existing = tmp_path / "file"
    existing.write_text("")
    with pytest.raises(SystemExit):
        configs.parse(baseline.Config, "", ["--out", str(existing)])
    assert "is a file; name a folder" in capsys.readouterr().err


def test_templates_and_ladder_check_their_own_fields():
    with pytest.raises(ValueError, match="figure_k=3 must be one of"):
        configs.build(templates.Config, "quick", figure_k=3)
    with pytest.raises(ValueError, match="small_data_examples"):
        configs.build(ladder.Config, "quick", small_data_examples=10)
    with pytest.raises(ValueError, match="grid_points must be three counts"):
        configs.build(spatial.Config, "quick", grid_points=(5, 5))
    with pytest.raises(ValueError, match="grid_examples .* must not exceed test_examples"):
        configs.build(spatial.Config, "quick", grid_examples=300)
    with pytest.raises(ValueError, match="max_degrees"):
        configs.build(spatial.Config, "quick", max_degrees=0.0)
