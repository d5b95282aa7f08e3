"""The manifold graph LM: BPE-1024 corpus, token manifold physics, sparsemax routing, transport, the
model, bits per byte, the int8 + zlib artifact, and that nothing built before training sees held-out text."""

import json
import math
import os
import signal

import numpy as np
import pytest
import torch

from semsim.manifold.token_manifold import (ManifoldSpec, build_manifold, conservative_energy, couplings, forces,
                                            statistics, token_hessian)
from semsim.models.manifold_lm import rotate, sparsemax


# ----------------------------------------------------------------------------- pieces
def test_sparsemax_is_the_simplex_projection_with_its_exact_jacobian():
    z = torch.randn(6, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    p = sparsemax(z)
    assert torch.allclose(p.sum(-1), torch.ones(6, dtype=torch.float64)) and (p >= 0).all()
    assert (p == 0).any()  # sparse, unlike softmax
    # the projection: p = argmin |p − z|² on the simplex, so p − z is constant on the support
    for row_p, row_z in zip(p, z):
        s = row_p > 0
        assert torch.allclose(row_p[s] - row_z[s], (row_p[s] - row_z[s])[0].expand(int(s.sum())))
        assert (row_z[~s] <= (row_z[s] - row_p[s])[0] + 1e-12).all()  # out of support: below the threshold
    assert torch.autograd.gradcheck(lambda t: sparsemax(t), (z.clone().requires_grad_(),))
    masked = sparsemax(torch.tensor([[0.3, -1e4, 0.1]], dtype=torch.float64))
    assert masked[0, 1] == 0 and torch.allclose(masked.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_transport_is_a_flat_connection():
    v = torch.randn(5, 8, dtype=torch.float64)
    a, b = torch.randn(4, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    assert torch.allclose(rotate(rotate(v, -b), a), rotate(v, a - b))  # R(θ_t)R(−θ_s) = R(θ_t − θ_s)
    assert torch.allclose(rotate(v, a).norm(dim=-1), v.norm(dim=-1))  # an isometry


def _toy_couplings(torsion=0.0, dim=4):
    toks = np.random.default_rng(0).integers(0, 30, 3000)
    spec = ManifoldSpec(dim=dim, torsion=torsion, top=8, steps=30, modes=8, svd_dims=4, graph_k=4)
    return toks, spec, couplings(statistics(toks, 30, 3), spec)


def test_manifold_forces_are_minus_the_energy_gradient_and_the_hessian_is_its_trace():
    _, spec, c = _toy_couplings()
    x = torch.randn(30, 4, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(conservative_energy(x, c, spec), x)
    assert torch.allclose(forces(x.detach(), c, spec), -grad, atol=1e-12)
    H = torch.autograd.functional.hessian(lambda y: conservative_energy(y, c, spec), x.detach())
    mine = token_hessian(x.detach().numpy(), {"A": c["A"].numpy(), "springs": (c["P"] + c["P"].T).numpy()}, spec)
    assert np.allclose(torch.einsum("iaja->ij", H).numpy(), mine, atol=1e-10)
    assert np.allclose(mine.sum(1), 0, atol=1e-10)  # translations cost nothing: the constant mode is 0


def test_torsion_has_no_potential():
    """The torsion force circulates: its work around a closed loop is not zero (a gradient's would be)."""
    _, spec, c = _toy_couplings(torsion=1.0, dim=3)
    _, spec0, c0 = _toy_couplings(torsion=0.0, dim=3)
    x0 = torch.randn(30, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    k = int(torch.nonzero((c["P"] - c["P"].T).abs().sum(1)).flatten()[0])  # a token with one-way bigrams

    def loop_work(c_, spec_):
        work, n = 0.0, 400
        for i in range(n):  # token k goes round a circle in the (e₁, e₂) plane; the others stay
            a0, a1 = 2 * math.pi * i / n, 2 * math.pi * (i + 1) / n
            p0, p1 = x0.clone(), x0.clone()
            p0[k, 1:3] += torch.tensor([math.cos(a0), math.sin(a0)], dtype=torch.float64)
            p1[k, 1:3] += torch.tensor([math.cos(a1), math.sin(a1)], dtype=torch.float64)
            f = 0.5 * (forces(p0, c_, spec_)[k] + forces(p1, c_, spec_)[k])
            work += float(f @ (p1[k] - p0[k]))
        return work

    assert abs(loop_work(c0, spec0)) < 1e-3  # conservative forces: no work around a loop
    assert abs(loop_work(c, spec)) > 0.1


def test_manifold_is_deterministic_and_well_formed():
    toks, spec, _ = _toy_couplings()
    a, b = build_manifold(toks, 30, spec), build_manifold(toks, 30, spec)
    for f in ("positions", "features", "neighbours", "weights", "eigenvalues"):
        assert np.array_equal(getattr(a, f), getattr(b, f))
    assert a.features.shape == (30, spec.modes + spec.svd_dims) and np.isfinite(a.features).all()
    assert (a.neighbours != np.arange(30)[:, None]).all()  # no token is its own neighbour
    assert ((a.weights > 0) & (a.weights <= 1)).all()


# ----------------------------------------------------------------------------- corpus and leakage
def _corpus_folder(tmp_path, name, val_text):
    d = tmp_path / name
    d.mkdir()
    src = (__import__("semsim.assets", fromlist=["asset_path"]).asset_path("tinyshakespeare/input.txt")).read_text()
    (d / "train.txt").write_text(src[:200_000])
    (d / "valid.txt").write_text(val_text)
    return d


def test_tokenizer_manifold_and_graph_see_no_held_out_text(tmp_path):
    """Two corpora with the same training text and different held-out text give bit-identical tokenizers,
    training streams and manifolds; a word found only in held-out text never becomes a token."""
    from semsim.config import DataConfig
    from semsim.data import prepare_corpus
    from semsim.manifold import manifold_for_corpus

    marker = "Zqxwvbn"
    a = _corpus_folder(tmp_path, "a", "To be, or not to be: that is the question.\n" * 50)
    b = _corpus_folder(tmp_path, "b", f"{marker} {marker}{marker}, said {marker}.\n" * 2000)
    spec = ManifoldSpec(steps=20, modes=16, svd_dims=8, graph_k=4)
    built = []
    for folder in (a, b):
        corpus = prepare_corpus(DataConfig(corpus=str(folder), tokenizer="bpe1024", cache_dir=str(tmp_path / "cache"
                                                                                                 / folder.name)),
                                log=lambda m: None)
        built.append((corpus, manifold_for_corpus(corpus, spec, log=lambda m: None)))
    (ca, ma), (cb, mb) = built
    assert (ca.root / "tokenizer.json").read_bytes() == (cb.root / "tokenizer.json").read_bytes()
    assert np.array_equal(np.asarray(ca.train), np.asarray(cb.train))
    for f in ("positions", "features", "neighbours", "weights"):
        assert np.array_equal(getattr(ma, f), getattr(mb, f))
    vocab = json.loads((cb.root / "tokenizer.json").read_text())["model"]["vocab"]
    assert not any(marker[1:4].lower() in piece.lower() for piece in vocab)
    assert (cb.root / f"manifold-{spec.key()}" / "projection.png").stat().st_size > 1000
    # the held-out text is still encoded exactly: bytes add up, decoding gives it back
    tok = cb.tokenizer()
    held = (b / "valid.txt").read_text().strip("\n")  # a document loses its closing newline
    assert tok.decode(np.asarray(cb.heldout).tolist()) == held
    assert int(cb.token_bytes()[np.asarray(cb.heldout).astype(np.int64)].sum()) == len(held.encode())


def test_single_file_split_happens_before_the_tokenizer(tmp_path):
    from semsim.config import DataConfig
    from semsim.data import prepare_corpus
    from semsim.data.bpe import encode_long

    text = (tmp_path / "t.txt")
    body = "alpha beta gamma delta\n" * 3000 + "Qwzxy Qwzxy Qwzxy Qwzxy\n" * 400
    text.write_text(body)
    c = prepare_corpus(DataConfig(corpus=str(text), tokenizer="bpe1024", val_fraction=0.2,
                                  cache_dir=str(tmp_path / "cache")), log=lambda m: None)
    vocab = json.loads((c.root / "tokenizer.json").read_text())["model"]["vocab"]
    assert not any("wzx" in piece for piece in vocab)  # the held-out tail's word was never merged
    tok = c.tokenizer()
    assert tok.decode(np.asarray(c.train).tolist()) + tok.decode(np.asarray(c.heldout).tolist()) == body.strip("\n")
    assert np.array_equal(encode_long(tok.tok, body, chunk_chars=1000), np.asarray(tok.tok.encode(body).ids))


# ----------------------------------------------------------------------------- model, metric, artifact
@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """The tiny manifold LM trained briefly on Tiny Shakespeare (BPE-1024), with weight EMA."""
    from semsim.presets import get_preset
    from semsim.training.trainer import Trainer

    out = tmp_path_factory.mktemp("manifold") / "run"
    run = get_preset("manifold-lm-tiny")
    run.override(["train.steps=80", "train.batch_size=8", "train.eval_interval=40", "train.eval_tokens=4096",
                  "train.progress=false", "train.keep_best=true", "train.lr_schedule=cosine-hold",
                  "train.lr_decay_steps=30", "train.lr_hold_steps=60", "train.warmup_steps=10", "train.ema=0.9"])
    result = Trainer(run, out, log=lambda m: None).fit()
    return out, result


def test_manifold_lm_is_causal_and_learns(trained):
    from semsim.diagnostics import causal_probe
    from semsim.training.checkpoint import load_model

    out, result = trained
    model = load_model(out / "checkpoint")[0]
    res = causal_probe(model, seq_len=48)
    assert res["passed"] and res["min_effect_at_or_after_t"] > 0, res
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r["loss"] for r in rows if r["split"] == "train"]
    assert train[-1] < train[0] - 1.0  # ln 1024 = 6.93 at the start
    assert result.val_loss < math.log(1024) - 1.0
    val = [r for r in rows if r["split"] == "val"]
    assert all("bpb" in r for r in val)
    # bits per byte and the loss describe the same sum: bpb · bytes · ln 2 = loss · tokens
    t = result.test["test_final"]
    assert math.isclose(t["bpb"] * t["bytes"] * math.log(2), t["loss"] * t["tokens"], rel_tol=1e-9)
    assert (out / "ema" / "model.safetensors").is_file()


def test_cosine_hold_schedule():
    from semsim.training.schedule import cosine_hold_multiplier as m

    steps = 6500
    at = {s: m(s / steps, steps, 100, 3400, 5500, 0.1) for s in (0, 50, 100, 1750, 3400, 4000, 5500, 6000, 6500)}
    assert at[50] == pytest.approx(0.5, abs=1e-6) and at[100] == pytest.approx(1.0)
    assert at[1750] == pytest.approx(0.55, abs=1e-6)  # half way down the cosine: (1 + 0.1) / 2
    assert at[3400] == pytest.approx(0.1) and at[4000] == pytest.approx(0.1)
    assert at[6000] == pytest.approx(0.05) and at[6500] == pytest.approx(0.0)


def test_artifact_round_trip_size_and_refusals(trained, tmp_path, capsys):
    from semsim.artifact import load_artifact, quantise_rows
    from semsim.cli import main
    from semsim.training.checkpoint import load_model

    w = torch.randn(64, 300, generator=torch.Generator().manual_seed(0))
    w[3, 7] = 40.0  # an outlier: clipped at the row's percentile instead of stretching its scale
    q, scale = quantise_rows(w, 99.0)
    deq = q.float() * scale.float()
    inside = w.abs() <= 127 * scale.float()
    assert ((deq - w).abs()[inside] <= scale.float().expand_as(w)[inside] * 0.5 + 1e-3).all()
    assert scale[3] < 1.0  # the outlier did not set row 3's scale

    out, _ = trained
    art = tmp_path / "model.ptz"
    assert main(["export", str(out / "ema"), "--artifact", str(art)]) == 0
    sizes = json.loads(capsys.readouterr().out)
    assert sizes["compressed_bytes"] == art.stat().st_size and sizes["artifact_bytes"] > sizes["compressed_bytes"]
    model, _ = load_artifact(art)
    ref = load_model(out / "ema")[0]
    x = torch.randint(0, 1024, (2, 48), generator=torch.Generator().manual_seed(1))
    a, b = model(x).logits, ref(x).logits
    assert (a - b).abs().max() < 0.05 * b.abs().max()  # int8 rows: close to the float model
    assert torch.equal(model.neighbours, ref.neighbours)  # the token graph travels exactly
    assert main(["eval", str(art), "--artifact", "--tokens", "4096"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["artifact"] and res["bpb"] > 0
    art.write_bytes(b"not an artifact")
    assert main(["eval", str(art), "--artifact"]) == 2
    assert "not a readable semsim artifact" in capsys.readouterr().err


def test_ema_resume_is_exact(tmp_path, data_dir):
    """A run with a weight EMA, stopped mid-run and resumed, ends with the same EMA as an unbroken one."""
    from safetensors.torch import load_file

    from semsim.presets import get_preset
    from semsim.training.trainer import Interrupted, Trainer

    def cfg():
        run = get_preset("gpt-bpe1024-tiny")
        run.override(["train.steps=12", "train.batch_size=2", "model.block_size=16", "train.eval_interval=0",
                      "train.eval_tokens=256", "train.progress=false", "train.causal_probe=false", "train.ema=0.9",
                      "train.lr_schedule=cosine-hold", "train.lr_decay_steps=4", "train.lr_hold_steps=8",
                      "train.warmup_steps=2"])
        return run

    Trainer(cfg(), tmp_path / "whole", log=lambda m: None).fit()
    tr = Trainer(cfg(), tmp_path / "cut", log=lambda m: None)
    original = tr.model.after_step

    def stop(step):
        if step == 5:
            os.kill(os.getpid(), signal.SIGINT)
        return original(step)

    tr.model.after_step = stop
    with pytest.raises(Interrupted):
        tr.fit()
    Trainer(None, tmp_path / "cut", resume=True, log=lambda m: None).fit()
    a, b = load_file(str(tmp_path / "whole/ema/model.safetensors")), load_file(str(tmp_path / "cut/ema/model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
