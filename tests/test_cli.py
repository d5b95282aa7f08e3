"""The command line: the happy path once, and every bad input as one line + non-zero exit."""

import json
import os
import subprocess
import sys


from semsim.cli import main


def _err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_presets_lists(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "gpt-baseline" in out and "splm-multixi-sq3" in out


def test_train_eval_generate(tmp_path, capsys, data_dir):
    out = tmp_path / "run"
    argv = ["train", "--preset", "gpt-tiny", "--out", str(out), "train.steps=6", "train.batch_size=4",
            "model.block_size=32", "train.eval_tokens=2048", "train.progress=false"]
    assert main(argv) == 0
    assert (out / "loss_curve.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["eval", str(out), "--tokens", "2048"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["tokens"] > 0 and res["ppl"] > 1
    assert main(["generate", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:")
    assert main(["diagnose", "causal", str(out)]) == 0


def test_unknown_preset(capsys):
    assert "unknown preset" in _err(capsys, ["train", "--preset", "nope"])


def test_missing_checkpoint(tmp_path, capsys):
    assert "no checkpoint" in _err(capsys, ["eval", str(tmp_path / "missing")])


def test_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage")
    (tmp_path / "config.json").write_text('{"model": {"family": "gpt"}}')
    assert "corrupt" in _err(capsys, ["generate", str(tmp_path)])


def test_empty_corpus(tmp_path, capsys, data_dir):
    (tmp_path / "empty.txt").write_text("")
    assert "empty" in _err(capsys, ["data", "prepare", str(tmp_path / "empty.txt")])


def test_block_size_longer_than_corpus(tmp_path, capsys, data_dir):
    (tmp_path / "small.txt").write_text("To be or not to be, that is the question. " * 20)
    err = _err(capsys, ["train", "--preset", "gpt-tiny", "--out", str(tmp_path / "r"),
                        f"data.corpus={tmp_path / 'small.txt'}", "model.block_size=512"])
    assert "block size 512 is longer" in err


def test_unknown_config_field(tmp_path, capsys):
    err = _err(capsys, ["train", "--preset", "gpt-tiny", "--out", str(tmp_path), "model.d_modle=3"])
    assert "unknown config field 'model.d_modle'" in err


def test_python_dash_m_and_exit_code(tmp_path):
    env = {**os.environ}
    p = subprocess.run([sys.executable, "-m", "semsim", "train", "--preset", "nope"], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 2 and p.stderr.startswith("semsim: error: unknown preset") and "Traceback" not in p.stderr


def test_seeds_report_test_slices_and_eval_says_which_slice(tmp_path, capsys, data_dir):
    """--seeds trains one folder per seed and summarises the test results over them; validation (and so
    keep_best) reads only the dev slice; eval defaults to the test slice and names it."""
    import statistics

    import torch

    from semsim.data import validation_windows
    from semsim.evaluation import evaluate
    from semsim.training import load_model
    from semsim.training.trainer import Trainer

    out = tmp_path / "seeds"
    argv = ["train", "--preset", "gpt-tiny", "--out", str(out), "--seeds", "3,4", "train.steps=6",
            "train.eval_interval=3", "train.keep_best=true", "train.batch_size=4", "model.block_size=32",
            "train.eval_tokens=2048", "train.progress=false"]
    assert main(argv) == 0
    rep = json.loads((out / "seeds.json").read_text())
    assert rep["seeds"] == [3, 4]
    runs = [json.loads((out / f"seed{s}" / "summary.json").read_text()) for s in (3, 4)]
    assert runs[0]["test"]["test_final"]["loss"] != runs[1]["test"]["test_final"]["loss"]  # seeds differ
    finals = [r["test"]["test_final"]["ppl"] for r in runs]
    agg = rep["mean_std"]["test_final"]
    assert agg["n"] == 2 and abs(agg["ppl_mean"] - statistics.fmean(finals)) < 1e-9
    assert abs(agg["ppl_std"] - statistics.stdev(finals)) < 1e-9
    assert {"test_final", "test_dev_selected", "heldout_final"} <= set(rep["mean_std"])
    # the logged validation loss is the dev slice's, and eval --split test is the summary's test number
    model, run = load_model(out / "seed3")
    corpus = Trainer(run, out / "seed3", resume=True, log=lambda m: None).corpus
    dev = evaluate(model, validation_windows(corpus.dev, 32, 2048), 16, torch.device("cpu"))
    assert abs(dev["loss"] - runs[0]["val_loss"]) < 1e-5
    capsys.readouterr()
    assert main(["eval", str(out / "seed3"), "--tokens", "2048"]) == 0
    captured = capsys.readouterr()
    res = json.loads(captured.out)
    assert res["split"] == "test" and "test slice" in captured.err
    assert abs(res["loss"] - runs[0]["test"]["test_final"]["loss"]) < 1e-5


def test_early_stopping_on_the_dev_slice(tmp_path, data_dir):
    from semsim.presets import get_preset
    from semsim.training.trainer import Trainer

    run = get_preset("gpt-tiny")
    # a learning rate this high makes the dev loss stop improving within a few validations
    run.override(["train.steps=400", "train.eval_interval=2", "train.patience=2", "train.lr=0.5",
                  "train.warmup_steps=0", "train.batch_size=4", "model.block_size=32", "train.eval_tokens=1024",
                  "train.progress=false"])
    result = Trainer(run, tmp_path, log=lambda m: None).fit()
    assert result.step < 400
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in rows if r["split"] == "val" and r["step"] <= result.step]
    best = min(range(len(vals)), key=lambda i: vals[i]["loss"])
    assert len(vals) - 1 - best >= 2  # stopped after two validations without a better dev loss


def test_bad_seeds_and_schedules_are_one_line(capsys):
    assert "--seeds" in _err(capsys, ["train", "--preset", "gpt-tiny", "--seeds", "1,x"])
    assert "--seeds" in _err(capsys, ["train", "--preset", "gpt-tiny", "--seeds", "1,1"])
    err = _err(capsys, ["train", "--preset", "hybrid-tiny", "model.schedule=AASX"])
    assert "model.schedule" in err and "A (attention block) and S" in err
    assert "n_layer" in _err(capsys, ["train", "--preset", "hybrid-tiny", "model.schedule=SSSA"])
