import pytest

from semsim.config import RunConfig
from semsim.errors import SemsimError
from semsim.presets import get_preset, preset_names


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_round_trip(tmp_path, suffix):
    run = get_preset("splm-multixi-sq3")
    run.override(["train.lr=1e-3", "model.ema_alphas=[0.1, 0.9]", "data.train_token_cap=1000"])
    path = tmp_path / f"run{suffix}"
    run.save(path)
    back = RunConfig.load(path)
    assert back.to_dict() == run.to_dict()
    assert back.model.ema_alphas == (0.1, 0.9) and back.train.lr == 1e-3


def test_override_types_and_errors():
    run = get_preset("gpt-tiny")
    run.override(["train.lr=5e-4", "train.steps=7", "train.time_budget=null", "model.bias=false"])
    assert run.train.lr == 5e-4 and run.train.steps == 7 and run.model.bias is False
    with pytest.raises(SemsimError, match="unknown config field 'model.nope'"):
        run.override(["model.nope=1"])
    with pytest.raises(SemsimError, match="expects an integer"):
        run.override(["train.steps=abc"])
    with pytest.raises(SemsimError):
        RunConfig.from_dict({"model": {"family": "gpt", "d_modle": 3}})


def test_every_preset_builds_a_config():
    for name in preset_names():
        assert RunConfig.from_dict(get_preset(name).to_dict()).to_dict() == get_preset(name).to_dict()
    with pytest.raises(SemsimError, match="unknown preset"):
        get_preset("nope")
