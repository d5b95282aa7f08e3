"""Data parallelism: 2 processes over gloo equal 1 process with the same global batch; checkpoints
move between world sizes."""

import json
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from semsim.cli import main

COMMON = ["--preset", "gpt-tiny", "train.steps=16", "model.block_size=16", "model.d_model=32", "model.n_head=2",
          "train.log_interval=1", "train.eval_interval=8", "train.eval_tokens=256", "train.ckpt_interval=8",
          "train.progress=false", "train.causal_probe=false", "train.device=cpu"]


def _torchrun(*argv: str) -> None:
    r = subprocess.run([sys.executable, "-m", "semsim", "train", "--nproc", "2", *argv],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


def _rows(run, split):
    return [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines() if json.loads(r)["split"] == split]


def _close(a, b, tol=1e-5):
    return abs(a - b) <= tol * max(1.0, abs(b))


def test_two_gloo_processes_equal_one_with_the_same_global_batch(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", "--out", str(one), *COMMON, "train.batch_size=4"]) == 0
    r = _torchrun("--out", str(two), *COMMON, "train.batch_size=2")
    assert "2 ranks × batch 2 × grad_accum 1 = global batch 4" in r.stdout + r.stderr
    for split, keys in (("train", ("loss", "lr", "grad_norm")), ("val", ("loss",))):
        a, b = _rows(one, split), _rows(two, split)
        assert [x["step"] for x in a] == [x["step"] for x in b] and a
        for x, y in zip(a, b):
            assert all(_close(x[k], y[k]) for k in keys), (split, x, y)
    summary = json.loads((two / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["global_batch"] == 4
    wa, wb = load_file(str(one / "checkpoint/model.safetensors")), load_file(str(two / "checkpoint/model.safetensors"))
    assert all((wa[k] - wb[k]).abs().max() < 1e-5 for k in wa)

    # checkpoints are interchangeable: each run continues the other's at the other world size
    capsys.readouterr()
    more = ["train.steps=20"]
    assert main(["train", "--out", str(two), "--resume", *COMMON, "train.batch_size=4", *more]) == 0
    _torchrun("--out", str(one), "--resume", *COMMON, "train.batch_size=2", *more)
    a, b = _rows(one, "train"), _rows(two, "train")
    assert [x["step"] for x in a][-4:] == [17, 18, 19, 20] == [x["step"] for x in b][-4:]
    assert all(_close(x["loss"], y["loss"]) for x, y in zip(a[-4:], b[-4:]))


def test_nproc_must_be_positive(tmp_path, capsys):
    assert main(["train", "--nproc", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--nproc must be ≥ 1" in capsys.readouterr().err


@pytest.mark.parametrize("argv,expect", [
    (["train", "--nproc", "2", "--out", "x", "a=b"], ["train", "--out", "x", "a=b"]),
    (["train", "--nproc=4", "--resume"], ["train", "--resume"]),
])
def test_nproc_is_removed_from_the_relaunched_command(argv, expect):
    from semsim.cli import _without_nproc

    assert _without_nproc(argv) == expect


@pytest.mark.slow
@pytest.mark.parametrize("preset,extra", [
    ("splm-multixi-tiny", []), ("splm-multixi-sq3-tiny", []), ("parflm-tiny", []), ("fock-parflm-tiny", []),
    ("hybrid-tiny", []), ("splm-multixi-tiny", ["train.compile=true", "train.compile_scope=regional"]),
])
def test_every_family_trains_data_parallel(tmp_path, preset, extra):
    """Every family (the Fock register schedule included) and regional compile run under DDP; the
    noise-free ones also match one process with the same global batch."""
    common = ["--preset", preset, "train.steps=6", "model.block_size=16", "train.log_interval=1",
              "train.eval_interval=0", "train.eval_tokens=256", "train.ckpt_interval=0", "train.progress=false",
              "train.causal_probe=false", "train.device=cpu", *extra]
    _torchrun("--out", str(tmp_path / "two"), *common, "train.batch_size=2")
    b = _rows(tmp_path / "two", "train")
    assert [x["step"] for x in b] == list(range(1, 7))
    if preset.startswith(("splm", "hybrid")) and not extra:  # no training noise: same numbers as one process
        assert main(["train", "--out", str(tmp_path / "one"), *common, "train.batch_size=4"]) == 0
        a = _rows(tmp_path / "one", "train")
        assert all(_close(x["loss"], y["loss"]) and _close(x["grad_norm"], y["grad_norm"]) for x, y in zip(a, b))
