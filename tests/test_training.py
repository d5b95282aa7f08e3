"""The trainer on real text: falling validation loss, exact resume, checkpoint round trip."""

import contextlib
import json

import pytest
import torch

from semsim.errors import SemsimError
from semsim.presets import get_preset
from semsim.training import Trainer, load_model, save_model


def _run(name, *overrides):
    run = get_preset(name)
    run.override(["train.progress=false", "train.eval_tokens=4096", *overrides])
    return run


def _rows(out, split):
    return [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["split"] == split]


@pytest.mark.parametrize("name", ["gpt-tiny", "splm-multixi-tiny", "splm-multixi-sq3-tiny", "parflm-tiny",
                                  "fock-parflm-tiny", "hybrid-tiny"])
def test_validation_loss_falls_on_tinyshakespeare(tmp_path, name, data_dir):
    run = _run(name, "train.steps=40", "train.batch_size=8", "train.eval_interval=20", "model.block_size=32",
               "train.warmup_steps=5")
    result = Trainer(run, tmp_path, log=lambda m: None).fit()
    val = _rows(tmp_path, "val")
    assert [r["step"] for r in val] == [20, 40]
    # Uniform guessing over 50257 tokens is 10.8 nats; 40 small steps must get well below it.
    assert result.val_loss < 7.5 and val[-1]["loss"] < val[0]["loss"]
    assert _rows(tmp_path, "probe")[0]["passed"]
    if name.startswith("splm"):
        assert len(val[-1]["energy"]["kinetic"]) == run.model.n_layer  # energy logged at validation


class _Killed(Exception):
    pass


def test_exact_resume(tmp_path, monkeypatch, data_dir):
    overrides = ("train.steps=10", "train.batch_size=4", "model.block_size=32", "train.log_interval=1",
                 "train.ckpt_interval=4", "train.eval_interval=0", "train.warmup_steps=3")
    Trainer(_run("splm-multixi-tiny", *overrides), tmp_path / "a", log=lambda m: None).fit()
    straight = [(r["step"], r["loss"]) for r in _rows(tmp_path / "a", "train")]

    # Second run: killed after step 6 (its checkpoint is from step 4), then resumed.
    from semsim.data.batches import BatchSampler

    real_get = BatchSampler.get

    def dying_get(self, step, micro=0):
        if step == 6:
            raise _Killed
        return real_get(self, step, micro)

    monkeypatch.setattr(BatchSampler, "get", dying_get)
    with pytest.raises(_Killed):
        Trainer(_run("splm-multixi-tiny", *overrides), tmp_path / "b", log=lambda m: None).fit()
    assert json.loads((tmp_path / "b/checkpoint/trainer_state.json").read_text())["step"] == 4
    monkeypatch.setattr(BatchSampler, "get", real_get)
    Trainer(_run("splm-multixi-tiny", *overrides), tmp_path / "b", resume=True, log=lambda m: None).fit()
    resumed = [(r["step"], r["loss"]) for r in _rows(tmp_path / "b", "train")]
    assert resumed == straight  # same steps, bit-identical losses, the killed tail dropped


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    for name in ("gpt-tiny", "splm-multixi-sq3-tiny"):
        model, run = load_model(name)
        save_model(tmp_path / name, model, run)
        back, run2 = load_model(tmp_path / name)
        idx = torch.randint(0, 50257, (2, 16))
        assert torch.equal(model(idx).logits, back(idx).logits)
        assert run2.to_dict() == run.to_dict()
        assert not list((tmp_path / name).glob("*.pt")) and not list((tmp_path / name).glob("*.bin"))


def test_corrupt_and_missing_checkpoints(tmp_path):
    model, run = load_model("gpt-tiny")
    save_model(tmp_path / "c", model, run)
    data = (tmp_path / "c/model.safetensors").read_bytes()
    (tmp_path / "c/model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(SemsimError, match="corrupt"):
        load_model(tmp_path / "c")
    with pytest.raises(SemsimError, match="no checkpoint"):
        load_model(tmp_path / "nothing-here")


def test_time_budget_ends_the_run(tmp_path, data_dir):
    run = _run("gpt-tiny", "train.steps=100000", "train.batch_size=4", "model.block_size=32",
               "train.time_budget=10", "train.eval_interval=0", "train.log_interval=1", "train.eval_tokens=2048")
    result = Trainer(run, tmp_path, log=lambda m: None).fit()
    assert 0 < result.step < 100000
    assert result.wall_s <= 10.0 + 0.5  # the final evaluation and save fit inside the budget
    assert (tmp_path / "checkpoint/model.safetensors").is_file()
    lrs = [r["lr"] for r in _rows(tmp_path, "train")]
    peak, floor = run.train.lr, run.train.lr * run.train.min_lr_ratio
    assert max(lrs) > 0.5 * peak  # the cosine was laid over the budget: up to the peak ...
    # ... and decayed to the floor when the budget ran out (within 5% of the range: on a loaded machine
    # the last step can start a few hundred ms before the budget's end)
    assert lrs[-1] - floor < 0.05 * (peak - floor)


def test_time_budget_too_short_to_train_says_so(tmp_path, data_dir):
    run = _run("gpt-tiny", "train.batch_size=4", "model.block_size=32", "train.time_budget=0.5")
    with pytest.raises(SemsimError, match="leaves no time to train"):
        Trainer(run, tmp_path, log=lambda m: None).fit()


def test_validation_by_wall_clock_and_best_checkpoint(tmp_path, data_dir):
    from semsim.evaluation import evaluate

    run = _run("gpt-tiny", "train.steps=100000", "train.batch_size=4", "model.block_size=32", "train.lr=3e-3",
               "train.time_budget=8", "train.eval_interval=0", "train.eval_interval_s=1.5", "train.keep_best=true",
               "train.eval_tokens=2048")
    trainer = Trainer(run, tmp_path, log=lambda m: None)
    result = trainer.fit()
    vals = _rows(tmp_path, "val")
    assert len(vals) >= 4  # the timing validation, ≥ 2 by the clock in ~6 s of steps, the final one
    best = min(vals, key=lambda r: r["loss"])
    assert (result.best_val_loss, result.best_step) == (best["loss"], best["step"])
    assert best["step"] > 0
    model, _ = load_model(tmp_path / "best")  # the saved best model reproduces its validation loss
    res = evaluate(model, trainer.val, run.train.eval_batch_size, torch.device("cpu"), contextlib.nullcontext())
    assert res["loss"] == pytest.approx(best["loss"], rel=1e-5)
