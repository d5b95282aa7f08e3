"""The fused kernels against their reference paths: Triton (interpreted on the CPU, compiled on CUDA) vs
PyTorch ops at 1e-5 in fp32, every hand-written backward by float64 gradcheck, the decay-matrix ξ vs the
scan, and the fused head vs F.cross_entropy."""

import contextlib
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from conftest import make_model
from semsim import kernels
from semsim.context.channels import CumulativeMean, MultiEMA
from semsim.kernels import linear_ce
from semsim.kernels.dispatch import interpret_on_cpu
from semsim.kernels.linear_ce import linear_cross_entropy
from semsim.kernels.mlp_force import MLPForce, mlp_force
from semsim.kernels.pair_force import PairForce
from semsim.kernels.pointwise import ACTS, OP_ACT, OP_DACT, OP_DOWN, OP_UP, _reference, pointwise
from semsim.kernels.wells_force import WellsForce
from semsim.potentials.mlp import MLPPotential
from semsim.potentials.pairwise import PairPotential
from semsim.potentials.wells import A_MIN, MixtureWells
from semsim.presets import get_preset

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def triton_mode():
    """Where the Triton kernels run here: compiled on a GPU, else Triton's interpreter on the CPU."""
    return contextlib.nullcontext() if DEVICE == "cuda" else interpret_on_cpu()


def close(a, b, tol=1e-5):
    """Relative to the reference's scale: |a − b| ≤ tol · max(1, max|b|)."""
    return (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("act", list(ACTS))
def test_pointwise_kernel_matches_reference(act):
    torch.manual_seed(0)
    z, x, y = (torch.randn(37, 19, device=DEVICE) * 3 for _ in range(3))
    row = torch.randn(19, device=DEVICE)
    for op, xx, yy in [(OP_ACT, None, None), (OP_DACT, None, y), (OP_DACT, None, row), (OP_UP, x, y),
                       (OP_UP, x, row), (OP_DOWN, x, y)]:
        with triton_mode():
            got = pointwise(op, z, act, xx, yy)
        for a, b in zip(got, _reference(op, z, xx, yy, act)):
            assert close(a, b), (act, op)


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("depth", [1, 3])
def test_mlp_force_backward_gradcheck(act, depth):
    torch.manual_seed(0)
    p = MLPPotential(6, 5, hidden=7, depth=depth, act=act).double()
    xi = torch.randn(2, 3, 6, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    layers = [t for lin in p.hidden for t in (lin.weight, lin.bias)] + [p.out.weight, p.out.bias]
    assert torch.autograd.gradcheck(lambda xi, h, *ps: MLPForce.apply(act, xi, h, *ps),
                                    (xi, h, p.in_xi.weight, p.in_xi.bias, p.in_h.weight, *layers))


def _grads(fn, inputs, params):
    out = fn()
    torch.manual_seed(1)
    loss = sum((o * torch.randn_like(o)).sum() for o in out)
    return [o.detach() for o in out], torch.autograd.grad(loss, inputs + params)


def test_mlp_force_kernels_match_autograd_reference():
    """fp32, Triton epilogues vs autograd through the closed form (the reference path)."""
    torch.manual_seed(0)
    p = MLPPotential(24, 16, hidden=32, depth=3).to(DEVICE)
    xi = torch.randn(3, 10, 24, device=DEVICE, requires_grad=True)
    h = torch.randn(3, 10, 16, device=DEVICE, requires_grad=True)
    params = list(p.parameters())
    with triton_mode():
        out1, g1 = _grads(lambda: mlp_force(p, xi, h), [xi, h], params)
    with kernels.use("reference"):
        out2, g2 = _grads(lambda: p.force(xi, h), [xi, h], params)
    for a, b in zip(out1 + list(g1), out2 + list(g2)):
        assert close(a, b)


def test_wells_force_backward_gradcheck():
    torch.manual_seed(0)
    Y = torch.randn(2, 4, 2 * 3 * 5 + 3 + 1, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda Y, h: WellsForce.apply(Y, h, 3, 0.7, A_MIN), (Y, h))


@pytest.mark.parametrize("d", [16, 20])  # 20: a width that is not a power of two (masked lanes)
def test_wells_force_kernel_matches_reference(d):
    torch.manual_seed(0)
    p = MixtureWells(12, d, n_wells=3, tau=0.7).to(DEVICE)
    xi = torch.randn(2, 21, 12, device=DEVICE, requires_grad=True)
    h = torch.randn(2, 21, d, device=DEVICE, requires_grad=True)
    params = list(p.parameters())
    with triton_mode():
        out1, g1 = _grads(lambda: p.force(xi, h), [xi, h], params)
    with kernels.use("reference"):
        out2, g2 = _grads(lambda: p.force(xi, h), [xi, h], params)
    for a, b in zip(out1 + list(g1), out2 + list(g2)):
        assert close(a, b)


def _pair_inputs(N, K, nl, nt, H, dtype, device="cpu"):
    torch.manual_seed(0)
    shapes = [(N, nl), (N, K, nl), (N, nt), (N, K, nt), (N, K), (2, 4, H)]
    x = [torch.randn(s, dtype=dtype, device=device) for s in shapes]
    x[-1][:, 3] = x[-1][:, 3, :1]  # b₂ is one number, repeated along the row
    return [t.requires_grad_(True) for t in x]


@pytest.mark.parametrize("act", ["gelu", "silu"])
def test_pair_force_backward_gradcheck(act):
    inputs = _pair_inputs(5, 3, 4, 6, 7, torch.float64)
    assert torch.autograd.gradcheck(lambda *x: PairForce.apply(*x, act), inputs)


@pytest.mark.parametrize("nl,nt,H", [(32, 32, 128), (6, 10, 20)])  # published widths; masked lanes
def test_pair_force_kernel_matches_reference(nl, nt, H):
    inputs = _pair_inputs(37, 4, nl, nt, H, torch.float32, DEVICE)  # 37 rows: a partial last block
    with triton_mode():
        out1, g1 = _grads(lambda: PairForce.apply(*inputs, "gelu"), inputs, [])
    with kernels.use("reference"):
        out2, g2 = _grads(lambda: PairForce.apply(*inputs, "gelu"), inputs, [])
    for a, b in zip(out1 + list(g1), out2 + list(g2)):
        assert close(a, b)


def test_fused_pair_force_matches_unfused():
    """The whole pair force (features, gathers, LayerNorm) fused vs the unfused closed form, with gradients
    of every parameter, the routing weights and h, in float64."""
    torch.manual_seed(0)
    pp = PairPotential(12, 3, k=4, score_dim=8, type_dim=6, angle_dim=5, hidden=16).double()
    h = torch.randn(2, 9, 12, dtype=torch.float64, requires_grad=True)
    params = [h, *pp.parameters()]

    def force():  # the routing weights carry the score network's gradient
        return pp.force(h, *pp.select(h, 1.0, noise=False)[:2], 2)

    out1, g1 = _grads(force, params, [])
    with kernels.use("reference"):
        out2, g2 = _grads(force, params, [])
    for a, b in zip(out1 + list(g1), out2 + list(g2)):
        a, b = (torch.zeros(()) if t is None else t for t in (a, b))
        assert close(a, b, 1e-12)


@pytest.mark.parametrize("path", ["tiles", "rows", "pointer tiles", "odd tiles"])
@pytest.mark.parametrize("vocab", [50, 5000])  # below and above the row pass's column block
def test_fused_head_matches_cross_entropy(vocab, path, monkeypatch):
    d = 16
    if path == "rows":  # the row pass that fp32 and float64 take on CUDA
        monkeypatch.setattr(linear_ce, "_use_tiles", lambda h, cd: False)
    if path in ("pointer tiles", "odd tiles"):  # a short last vocab split, rows not filling a block
        monkeypatch.setattr(linear_ce, "HEAD_TILE", {"stats": (16, 64, 4, 1, 3), "grad": (32, 128, 4, 1, 3)})
    if path == "pointer tiles":  # the loads of GPUs before Hopper, not tensor descriptors
        monkeypatch.setattr(linear_ce, "_tma", lambda *t: False)
    if path == "odd tiles":  # a width below the panel's, in rows too narrow for a tensor descriptor
        d = 10
    torch.manual_seed(0)
    h = torch.randn(2, 9, d, device=DEVICE, requires_grad=True)
    W = torch.randn(vocab, d, device=DEVICE, requires_grad=True)
    t = torch.randint(0, vocab, (2, 9), device=DEVICE)
    ref = F.cross_entropy((h @ W.T).reshape(-1, vocab), t.reshape(-1))
    g_ref = torch.autograd.grad(ref, [h, W])
    for mode in (triton_mode(), kernels.use("fused")):  # the Triton kernels, then the PyTorch row pass
        with mode:
            loss = linear_cross_entropy(h, W, t, chunk=5)  # chunks that do not divide the 18 tokens
            g = torch.autograd.grad(loss, [h, W])
            with torch.no_grad():  # evaluation: the loss alone
                assert close(linear_cross_entropy(h, W, t), ref)
        assert close(loss, ref) and all(close(a, b) for a, b in zip(g, g_ref))


def test_fused_head_compiles_in_one_graph():
    """torch.compile takes the tile kernels as one opaque operator (their tensor descriptors are built when
    they run): one graph, and the loss and gradients of the eager head (in bf16 on CUDA, the tiles' dtype)."""
    torch.manual_seed(0)
    h = torch.randn(18, 16, device=DEVICE, requires_grad=True)
    W = torch.randn(500, 16, device=DEVICE, requires_grad=True)
    t = torch.randint(0, 500, (18,), device=DEVICE)
    head = torch.compile(lambda h, W, t: linear_cross_entropy(h, W, t, chunk=5), fullgraph=True)
    with triton_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=DEVICE == "cuda"):
        ref = linear_cross_entropy(h, W, t, chunk=5)
        g_ref = torch.autograd.grad(ref, [h, W])
        loss = head(h, W, t)
        g = torch.autograd.grad(loss, [h, W])
    assert close(loss, ref)
    tol = 1e-5 if DEVICE == "cpu" else 1e-2  # compiled, ∂E's chunk product is rounded to bf16 before it is added
    for a, b in zip(g, g_ref):
        assert ((a - b).norm() / b.norm()).item() < tol


@pytest.mark.skipif(DEVICE != "cuda", reason="the tile kernels' bf16 path runs on CUDA")
@pytest.mark.parametrize("vocab", [50, 5000, 50257])
def test_fused_head_tiles_in_bf16(vocab):
    """Under autocast the tile kernels see bf16 operands: the loss and gradients are those of
    F.cross_entropy on the same bf16 operands, to bf16's precision in G."""
    torch.manual_seed(0)
    h = torch.randn(300, 64, device=DEVICE, requires_grad=True)
    W = (torch.randn(vocab, 64, device=DEVICE) * 0.1).requires_grad_(True)
    t = torch.randint(0, vocab, (300,), device=DEVICE)
    ref = F.cross_entropy((h.bfloat16() @ W.bfloat16().T).float(), t)
    g_ref = torch.autograd.grad(ref, [h, W])
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = linear_cross_entropy(h, W, t, chunk=128)
        g = torch.autograd.grad(loss, [h, W])
    assert abs(loss.item() - ref.item()) < 1e-4 * max(1.0, ref.item())
    for a, b in zip(g, g_ref):
        assert ((a - b).norm() / b.norm()).item() < 1e-2


@pytest.mark.parametrize("channel", [MultiEMA(), MultiEMA(debias=False), CumulativeMean()], ids=str)
def test_decay_matrix_context_equals_scan(channel):
    channel = channel.double()
    torch.manual_seed(0)
    h = torch.randn(3, 50, 8, dtype=torch.float64, requires_grad=True)
    xi = channel(h)
    with kernels.use("reference"):
        ref = channel(h)
    assert close(xi, ref, 1e-12)
    g = torch.randn_like(xi)
    params = [h, *channel.parameters()]
    for a, b in zip(torch.autograd.grad((xi * g).sum(), params), torch.autograd.grad((ref * g).sum(), params)):
        assert close(a, b, 1e-11)
    later = h.detach().clone()
    later[:, 30:] += 1.0  # a change from position 30 on leaves every earlier ξ bit for bit
    assert torch.equal(channel(later)[:, :30], xi.detach()[:, :30])


@pytest.mark.parametrize("name", ["splm-multixi-tiny", "splm-multixi-sq3-tiny", "parflm-tiny", "gpt-tiny"])
def test_fused_model_step_matches_reference(name):
    """One training step's loss and gradients, all kernels fused vs all reference, in float64."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(get_preset(name).model, vocab_size=97)
    model = make_model(cfg).double()
    idx = torch.randint(0, 97, (2, 24))
    params = [p for p in model.parameters() if p.requires_grad]
    torch.manual_seed(1)  # the same Gumbel routing noise for both
    out = model(idx, targets=idx)
    assert out.logits is None  # the fused head never builds the logits
    g1 = torch.autograd.grad(out.loss, params, allow_unused=True)
    with kernels.use("reference"):
        torch.manual_seed(1)
        ref = model(idx, targets=idx)
        g2 = torch.autograd.grad(ref.loss, params, allow_unused=True)
    assert close(out.loss, ref.loss, 1e-12)
    for a, b, p in zip(g1, g2, params):
        a, b = (torch.zeros_like(p) if g is None else g for g in (a, b))
        assert close(a, b, 1e-9)
