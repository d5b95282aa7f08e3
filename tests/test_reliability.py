"""Reliability: every bad input refused in one line with status 2 and nothing on disk lost; checkpoint
format and tensor checks; kill-anywhere resume (SIGKILL, including mid-checkpoint) and Ctrl-C."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from conftest import make_model
from semsim.cli import main
from semsim.errors import SemsimError
from semsim.presets import get_preset
from semsim.training.checkpoint import FORMAT, load_model, save_model


def _refused(capsys, argv, *, contains: str | None = None):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    if contains:
        assert contains in err, err
    return err


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def tiny_ckpt(tmp_path):
    run = get_preset("gpt-tiny")
    torch.manual_seed(0)
    save_model(tmp_path / "ck", make_model(run.model), run)
    return tmp_path / "ck"


# ----------------------------------------------------------------------------- bad input, by kind
BAD_OVERRIDES = ["train.steps=0", "train.batch_size=-2", "train.lr=-1e-3", "train.lr=.nan", "model.d_model=0",
                 "model.n_head=3", "model.block_size=1", "data.val_fraction=1.5", "train.time_budget=-5",
                 "train.beta2=1.0", "train.dtype=fp8", "model.dropout=1.0", "train.eval_tokens=0"]


@pytest.mark.parametrize("override", BAD_OVERRIDES)
def test_bad_config_values_are_refused_before_the_folder_is_touched(tmp_path, capsys, override):
    _refused(capsys, ["train", "--preset", "gpt-tiny", "--out", str(tmp_path / "r"), override])
    assert not (tmp_path / "r").exists()


def test_nothing_to_resume_is_an_error_not_a_new_run(tmp_path, capsys):
    _refused(capsys, ["train", "--out", str(tmp_path / "empty"), "--resume"], contains="nothing to resume")
    assert not (tmp_path / "empty").exists() or not any((tmp_path / "empty").iterdir())


def test_out_that_is_a_file_is_refused_and_kept(tmp_path, capsys):
    f = tmp_path / "notes.txt"
    f.write_text("precious")
    _refused(capsys, ["train", "--preset", "gpt-tiny", "--out", str(f)], contains="is a file")
    assert f.read_text() == "precious"


def test_a_folder_holding_a_run_needs_resume_or_force(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--preset", "gpt-tiny", "--out", str(out), "train.steps=2", "train.batch_size=2",
            "model.block_size=16", "train.eval_tokens=64", "train.progress=false", "train.causal_probe=false"]
    assert main(argv) == 0
    before = _snapshot(out)
    _refused(capsys, argv, contains="already holds a run")
    assert _snapshot(out) == before  # nothing overwritten
    _refused(capsys, [*argv, "--resume", "--force"], contains="choose one")
    assert main([*argv, "--force"]) == 0  # replaced on request


@pytest.mark.parametrize("args,contains", [
    (["--max-new-tokens", "0"], "≥ 1"), (["--max-new-tokens", "-3"], "≥ 1"), (["--max-new-tokens", "x"], "whole"),
    (["--temperature", "-1"], "temperature"), (["--top-p", "0"], "top-p"), (["--top-p", "1.5"], "top-p"),
    (["--top-k", "-1"], "top-k"), (["--prompt", "word " * 80], "learned"),
])
def test_generate_refuses_bad_sampling_arguments(tiny_ckpt, capsys, args, contains):
    _refused(capsys, ["generate", str(tiny_ckpt), *args], contains=contains)


@pytest.mark.parametrize("argv", [
    ["eval", "{ck}", "--tokens", "0"], ["eval", "{ck}", "--batch-size", "-1"],
    ["data", "prepare", "--val-fraction", "1.5"], ["data", "prepare", "--train-token-cap", "0"],
    ["diagnose", "separator", "{ck}", "--seqs", "0"], ["diagnose", "stp", "{ck}", "--seq-len", "-4"],
    ["train", "--preset", "gpt-tiny", "--time-budget", "0"], ["frobnicate"], [],
])
def test_other_verbs_refuse_bad_counts(tiny_ckpt, capsys, argv):
    _refused(capsys, [a.format(ck=tiny_ckpt) for a in argv])


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_format_versions(tiny_ckpt):
    cfg = json.loads((tiny_ckpt / "config.json").read_text())
    assert cfg["format"] == FORMAT
    cfg.pop("format")  # a checkpoint written before formats were numbered still loads
    (tiny_ckpt / "config.json").write_text(json.dumps(cfg))
    load_model(tiny_ckpt)
    (tiny_ckpt / "config.json").write_text(json.dumps({**cfg, "format": 7}))
    with pytest.raises(SemsimError, match="format 7, newer .* upgrade semsim"):
        load_model(tiny_ckpt)


@pytest.mark.parametrize("version", [0, 1])
def test_checkpoints_before_format_2_load_with_their_meaning(tmp_path, version):
    """Formats 0–1 counted an MLP potential's linear layers in ``depth`` and described a hybrid by
    ``n_attn_layers`` + ``layout``: they load as the same tensors and the same stack."""
    for name, old in (("splm-multixi-tiny", {"depth": 3}),
                      ("hybrid-tiny", {"depth": 3, "n_attn_layers": 2, "layout": "attn-first"})):
        run = get_preset(name)
        run.model.depth = 2
        model = make_model(run.model).eval()
        save_model(tmp_path / name, model, run)
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        cfg["model"].update(old)
        cfg["model"].pop("schedule", None)
        if version == 0:
            cfg.pop("format")
        else:
            cfg["format"] = version
        (tmp_path / name / "config.json").write_text(json.dumps(cfg))
        back, run2 = load_model(tmp_path / name)
        assert run2.model.depth == 2 and getattr(run2.model, "schedule", "AASS") == "AASS"
        idx = torch.randint(0, 50257, (2, 16))
        assert torch.equal(model(idx).logits, back.eval()(idx).logits)


def test_tensors_that_do_not_match_the_config_are_named(tiny_ckpt):
    cfg = json.loads((tiny_ckpt / "config.json").read_text())
    cfg["model"]["mlp_ratio"] = 2  # the saved MLP weights are 4× wide
    (tiny_ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SemsimError, match=r"tensor 'blocks\.0\.mlp\.0\.bias' is float32\[256\], the config's model needs float32\[128\]"):
        load_model(tiny_ckpt)


# ----------------------------------------------------------------------------- property-based
_FIELDS = ["train.steps", "train.lr", "train.batch_size", "train.warmup_steps", "train.beta1", "train.dtype",
           "train.time_budget", "model.d_model", "model.n_head", "model.n_layer", "model.block_size",
           "model.dropout", "model.mlp_ratio", "data.val_fraction", "data.train_token_cap", "model.nonsense",
           "bogus.field", "train", "model.vocab_size", "model.bias"]
_VALUES = st.one_of(st.integers(-3, 70), st.floats(allow_nan=True, allow_infinity=True, width=32),
                    st.sampled_from(["", "abc", "null", "[1, 2]", "{a: 1}", "true", "5e-4", "-0", ":"]))


# Example counts come from the hypothesis profile (tests/conftest.py): 150 by default,
# SEMSIM_HYPOTHESIS_PROFILE=thorough for a long sweep.
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(_FIELDS), _VALUES), max_size=4))
def test_any_config_override_builds_or_is_refused_cleanly(assignments):
    """Every generated override list either yields a model that runs a forward pass or a SemsimError."""
    items = [f"{k}={v}" for k, v in assignments]
    try:
        run = get_preset("gpt-tiny").override(items).check()
        model = make_model(run.model)
    except SemsimError:
        return
    idx = torch.randint(0, run.model.vocab_size, (1, min(4, run.model.block_size)))
    logits = model(idx).logits
    assert logits.shape == (*idx.shape, run.model.vocab_size) and torch.isfinite(logits).all()


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["--max-new-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--prompt",
                                 "--stats", "--no-stream", "-1", "0", "2", "0.5", "1e9", "nan", "x", "", "--device",
                                 "cpu", "--bogus"]), max_size=6))
def test_any_generate_arguments_run_or_fail_in_one_line(tiny_ckpt, capsys, args):
    try:
        code = main(["generate", str(tiny_ckpt), "--max-new-tokens", "3", *args])
    except SystemExit as e:  # only --help may exit this way
        pytest.fail(f"SystemExit {e.code} for {args}")
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    if code != 0:
        assert code == 2 and len(out.err.strip().splitlines()) == 1, (args, out.err)


# ----------------------------------------------------------------------------- kill anywhere
# Small enough that start-up, steps and checkpoint writes (every step) take comparable time.
TRAIN = ["train", "--preset", "gpt-tiny", "train.steps=16", "train.batch_size=2", "model.block_size=16",
         "model.d_model=16", "model.n_head=2", "train.log_interval=1", "train.eval_interval=6",
         "train.eval_tokens=256", "train.ckpt_interval=1", "train.progress=false", "train.causal_probe=false"]


def _train(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "semsim", *TRAIN, "--out", str(out), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _curve(out: Path) -> list:
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    return [(r["split"], r["step"], r["loss"], r.get("lr"), r.get("grad_norm")) for r in rows]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    t0 = time.perf_counter()
    p = _train(out)
    assert p.wait() == 0, p.stderr.read()
    return out, time.perf_counter() - t0


def _kill_anywhere(tmp_path, reference, n_kills: int, seed: int) -> dict:
    ref, wall = reference
    out, rng = tmp_path / "run", random.Random(seed)
    tried = during_write = 0
    while True:
        has_run = out.exists() and any(out.iterdir())
        resume = (out / "checkpoint").is_dir() or (out / "checkpoint.old").is_dir()
        p = _train(out, *(["--resume"] if resume else ["--force"] if has_run else []))
        if tried == n_kills:
            assert p.wait() == 0, p.stderr.read()
            break
        if tried % 2:  # every other kill lands inside a checkpoint write: as soon as one starts
            deadline = time.time() + 2 * wall
            while p.poll() is None and not (out / "checkpoint.tmp").exists() and time.time() < deadline:
                time.sleep(0.0005)
        else:  # start-up is ~1/3 of the wall time; then steps, validations and saves
            time.sleep(rng.uniform(0.35, 0.95) * wall)
        p.send_signal(signal.SIGKILL)
        p.wait()
        tried += 1
        during_write += (out / "checkpoint.tmp").exists() or (out / "checkpoint.old").exists()
    assert _curve(out) == _curve(ref)  # same steps, bit-identical losses, LR and gradient norms
    a, b = load_file(str(out / "checkpoint/model.safetensors")), load_file(str(ref / "checkpoint/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return {"tried": tried, "during_checkpoint_write": during_write}


def test_kill_anywhere_resume_is_bit_exact(tmp_path, reference):
    res = _kill_anywhere(tmp_path, reference, n_kills=3, seed=0)
    assert res["during_checkpoint_write"] >= 1
    print(f"kill points survived: {res['tried']}/{res['tried']} ({res['during_checkpoint_write']} mid-checkpoint)")


@pytest.mark.slow
def test_kill_anywhere_resume_many_points(tmp_path, reference):
    res = _kill_anywhere(tmp_path, reference, n_kills=20, seed=1)
    print(f"kill points survived: {res['tried']}/{res['tried']} ({res['during_checkpoint_write']} mid-checkpoint)")
    assert res["during_checkpoint_write"] > 0


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path, reference):
    out = tmp_path / "run"
    p = _train(out)
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for a few logged steps, then press Ctrl-C
        m = out / "metrics.jsonl"
        if m.is_file() and len(m.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    assert p.wait() == 130
    err = p.stderr.read()
    assert "checkpoint saved" in err and f"semsim train --out {out} --resume" in err and "Traceback" not in err
    step = json.loads((out / "checkpoint/trainer_state.json").read_text())["step"]
    assert 0 < step < 16
    q = _train(out, "--resume")
    assert q.wait() == 0, q.stderr.read()
    assert _curve(out) == _curve(reference[0])


def test_cli_runs_are_importable_without_a_terminal():
    # The kill tests start ``python -m semsim``: the module entry point must exist and exit cleanly.
    r = subprocess.run([sys.executable, "-m", "semsim", "presets"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert r.returncode == 0 and "gpt-tiny" in r.stdout
