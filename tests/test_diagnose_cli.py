"""`semsim diagnose` end to end: a semsim checkpoint and a (random-weight) Hugging Face GPT-2."""

import json

import pytest
import torch

from semsim.cli import main
from semsim.diagnostics.trajectories import HFCausalLM, collect, load_subject


@pytest.fixture(scope="module")
def hf_gpt2(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.GPT2Config(vocab_size=50257, n_positions=64, n_embd=32, n_layer=3, n_head=2)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("hf") / "tiny-gpt2"
    transformers.GPT2LMHeadModel(cfg).save_pretrained(path)
    return path


def test_hf_model_trajectories_and_causality(hf_gpt2):
    from semsim.diagnostics import causal_probe

    model = load_subject(str(hf_gpt2))
    assert isinstance(model, HFCausalLM)
    tr = collect(model, torch.randint(0, 50257, (4, 16)))
    assert tr.h.shape == (64, 4, 32)  # 3 blocks + embeddings
    assert causal_probe(model, seq_len=16)["passed"]


def test_diagnose_all_on_an_splm(tmp_path, capsys, data_dir):
    model_dir = tmp_path / "m"
    assert main(["train", "--preset", "splm-multixi-sq3-tiny", "--out", str(model_dir), "train.steps=4",
                 "train.batch_size=4", "model.block_size=32", "train.eval_tokens=2048", "train.progress=false"]) == 0
    out = tmp_path / "diag"
    assert main(["diagnose", "all", str(model_dir), "--out", str(out), "--seqs", "4", "--seq-len", "32",
                 "--steps", "20", "--quiet"]) == 0
    report = (out / "report.md").read_text()
    for section in ("Shared-potential separator", "STP", "Potential-form fitting", "Jacobian", "Energy",
                    "Landscape", "Attractors"):
        assert section in report
    for png in ("separator.png", "energy.png", "landscape.png", "fit_potential.png"):
        assert (out / png).stat().st_size > 1000
    sep = json.loads((out / "separator.json").read_text())
    assert len(sep["r2"]) == 4 - 1 and "oracle" in sep
    att = json.loads((out / "attractors.json").read_text())
    first = att["prompts"][0]
    assert first["method"].startswith("minima of V_θ") and first["n_attractors"] >= 1
    assert len(first["centres"]["points"]) == 8 and "not necessarily the mixture's" in first["centres"]["what"]


def test_diagnose_stp_on_hf_and_splm_only_errors(hf_gpt2, tmp_path, capsys, data_dir):
    assert main(["diagnose", "stp", str(hf_gpt2), "--out", str(tmp_path), "--seqs", "4", "--seq-len", "32",
                 "--quiet"]) == 0
    stp = json.loads((tmp_path / "stp.json").read_text())
    assert stp["layer"]["identity_max_abs_error"] < 1e-9
    capsys.readouterr()
    assert main(["diagnose", "energy", str(hf_gpt2), "--out", str(tmp_path), "--quiet"]) == 2
    assert "needs a model with a potential" in capsys.readouterr().err
