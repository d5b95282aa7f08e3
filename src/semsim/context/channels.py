"""The context channels ξ: causal summaries of the token states h_{≤t}.

Each channel maps h (B, T, d) to ξ (B, T, C, d): C summaries of every prefix. All are linear
time-invariant filters computed by the doubling scan of :mod:`semsim.context.scan`.

For incremental decoding every channel also runs as a recurrence: ``stream(h, state, t0)`` takes
the next n states of a sequence whose first ``t0`` states left the carried ``state`` (``None`` at the
start) and returns (ξ for the n positions, the new state). The state's size does not depend on t0.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from semsim import kernels
from semsim.context.scan import causal_filter, diag_scan, filter_rows, matrix_scan
from semsim.kernels.dispatch import compute_dtype
from semsim.per_forward import PerForward


def _positions(t0: int | torch.Tensor, n: int, like: torch.Tensor) -> torch.Tensor:
    """1-based positions t0+1 … t0+n (t0 may be a device counter, as in a CUDA-graphed decode step)."""
    return torch.arange(1, n + 1, device=like.device, dtype=like.dtype) + t0


def _carry(u: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
    """Prepend the carried state as step 0 of the recurrence (x_0 = state, x_t = A x_{t-1} + u_t)."""
    return u if state is None else torch.cat([state.unsqueeze(1), u], dim=1)


def _drop_carry(x: torch.Tensor, state: torch.Tensor | None) -> torch.Tensor:
    return x if state is None else x[:, 1:]


class _Filter(nn.Module, PerForward):
    """A channel that is one causal linear filter W (K, T, T) of h (:func:`causal_filter`): its (T·K, T) matrix
    is built once per forward in the matmul dtype (:mod:`semsim.per_forward`)."""

    def weights(self, T: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        raise NotImplementedError

    def _rows(self, h: torch.Tensor) -> torch.Tensor:  # built in ≥ fp32, then cast for the matmul
        W = self.weights(h.shape[1], h.device, torch.promote_types(h.dtype, torch.float32))
        return filter_rows(W).to(compute_dtype(h))

    def build_per_forward(self, h0: torch.Tensor, streaming: bool) -> dict[str, torch.Tensor]:
        return {} if streaming or not kernels.fused() else {"rows": self._rows(h0)}

    def _filter(self, h: torch.Tensor) -> torch.Tensor:
        rows = self.per_forward("rows")
        return causal_filter(h, self._rows(h) if rows is None else rows)


class CumulativeMean(_Filter):
    """Vanilla SPLM: ξ_t = (1/t) Σ_{s≤t} h_s."""

    n_channels = 1

    def weights(self, T: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """W_{t,s} = 1/t for s ≤ t, (1, T, T)."""
        t = torch.arange(1, T + 1, device=device, dtype=dtype).view(-1, 1)
        return (torch.ones(T, T, device=device, dtype=dtype).tril() / t).unsqueeze(0)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if kernels.fused():  # one matmul (see causal_filter)
            return self._filter(h)
        t = torch.arange(1, h.shape[1] + 1, device=h.device, dtype=h.dtype).view(1, -1, 1)
        return (h.cumsum(1) / t).unsqueeze(2)

    def stream(self, h: torch.Tensor, state: torch.Tensor | None, t0: int):
        """State: the running sum Σ_{s≤t0} h_s, (B, d)."""
        s = h.cumsum(1) if state is None else state.unsqueeze(1) + h.cumsum(1)
        return (s / _positions(t0, h.shape[1], h).view(1, -1, 1)).unsqueeze(2), s[:, -1]


class MultiEMA(_Filter):
    """Multi-ξ: K parallel EMAs ξ^k_t = α_k ξ^k_{t-1} + (1-α_k) h_t with learnable decays α_k."""

    def __init__(self, alphas: tuple[float, ...] = (0.25, 0.5, 0.75, 0.95), debias: bool = True):
        super().__init__()
        a = torch.tensor(alphas, dtype=torch.float32)
        self.decay_logit = nn.Parameter(torch.log(a / (1 - a)))  # α = sigmoid(logit) stays in (0, 1)
        self.n_channels = len(alphas)
        # Debias (as Adam does) so that ξ is a weighted mean of h_{≤t} from the first token on,
        # rather than being pulled toward the zero initial state; switch off for the raw EMA.
        self.debias = debias

    @property
    def alphas(self) -> torch.Tensor:
        return torch.sigmoid(self.decay_logit)

    def weights(self, T: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The filter as a (K, T, T) matrix: W_{k,t,s} = (1 − α_k) α_k^{t−s} [/ (1 − α_k^t)] for s ≤ t
        (on the decays' device, in at least their dtype)."""
        log_a = F.logsigmoid(self.decay_logit).view(-1, 1, 1)  # log α, exact near α → 1
        t = torch.arange(1, T + 1, device=log_a.device, dtype=dtype)
        lag = (t.view(-1, 1) - t.view(1, -1)).clamp_min(0)
        W = torch.exp(lag * log_a) * (-torch.expm1(log_a)) * torch.ones(T, T, device=log_a.device).tril()
        if self.debias:
            W = W / -torch.expm1(t.view(1, -1, 1) * log_a)  # 1 − α^t
        return W

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if kernels.fused():  # one matmul (see causal_filter)
            return self._filter(h)
        a = self.alphas.to(h.dtype).view(-1, 1)  # (K, 1) broadcast over d
        xi = diag_scan((1 - a) * h.unsqueeze(2), a)  # (B, T, K, d)
        if self.debias:
            t = torch.arange(1, h.shape[1] + 1, device=h.device, dtype=h.dtype).view(1, -1, 1, 1)
            xi = xi / (1 - a.view(1, 1, -1, 1) ** t)
        return xi

    def stream(self, h: torch.Tensor, state: torch.Tensor | None, t0: int):
        """State: the raw (not debiased) EMAs at t0, (B, K, d)."""
        a = self.alphas.to(h.dtype).view(-1, 1)
        u = (1 - a) * h.unsqueeze(2)
        if state is not None and h.shape[1] == 1:  # one token: the scan's single round, without its copies
            x = u + a * state.unsqueeze(1)
        else:
            x = _drop_carry(diag_scan(_carry(u, state), a), state)
        xi = x
        if self.debias:
            xi = x / (1 - a.view(1, 1, -1, 1) ** _positions(t0, h.shape[1], h).view(1, -1, 1, 1))
        return xi, x[:, -1]


def legt_matrices(n: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Continuous-time HiPPO-LegT (Legendre memory over a sliding window of length θ)."""
    q = torch.arange(n, dtype=torch.float64)
    r = (2 * q + 1).view(-1, 1) / theta
    i, j = torch.meshgrid(q, q, indexing="ij")
    A = r * torch.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    B = r * ((-1.0) ** q).view(-1, 1)
    return A, B


class HiPPOLegT(nn.Module):
    """ξ_t = c_t, the N Legendre coefficients of the last θ states: c_t = Ā c_{t-1} + B̄ h_t.

    Discretised by zero-order hold with unit step (exact for piecewise-constant input), via the
    block exponential expm([[A, B], [0, 0]]) = [[Ā, B̄], [0, I]]. Fixed, not learned (as in HiPPO).
    """

    def __init__(self, n: int = 4, theta: float = 32.0):
        super().__init__()
        A, B = legt_matrices(n, theta)
        M = torch.zeros(n + 1, n + 1, dtype=torch.float64)
        M[:n, :n], M[:n, n:] = A, B
        E = torch.linalg.matrix_exp(M)
        self.register_buffer("A_bar", E[:n, :n].float(), persistent=False)
        self.register_buffer("B_bar", E[:n, n].float(), persistent=False)
        self.n_channels = n

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        u = self.B_bar.to(h.dtype).view(1, 1, -1, 1) * h.unsqueeze(2)  # (B, T, N, d)
        return matrix_scan(u, self.A_bar.to(h.dtype))

    def stream(self, h: torch.Tensor, state: torch.Tensor | None, t0: int):
        """State: the Legendre coefficients c_t0, (B, N, d)."""
        u = self.B_bar.to(h.dtype).view(1, 1, -1, 1) * h.unsqueeze(2)
        c = _drop_carry(matrix_scan(_carry(u, state), self.A_bar.to(h.dtype)), state)
        return c, c[:, -1]


class S4D(nn.Module):
    """Diagonal state-space channels: N complex modes x_t = Ā x_{t-1} + B̄ h_t, K real outputs.

    Ā = exp(Δλ) with λ = -exp(log_re) + i·im (S4D-Lin init: re = -1/2, im = πn), B̄ = (Ā - 1)/λ
    (zero-order hold), y^k_t = Re Σ_n C_kn x_{t,n}. λ, Δ and C are learned.
    """

    def __init__(self, n_modes: int = 16, n_out: int = 4, dt_min: float = 1e-2, dt_max: float = 1e-1):
        super().__init__()
        self.log_neg_re = nn.Parameter(torch.full((n_modes,), math.log(0.5)))
        self.im = nn.Parameter(math.pi * torch.arange(n_modes, dtype=torch.float32))
        log_dt = torch.linspace(math.log(dt_min), math.log(dt_max), n_modes)
        self.log_dt = nn.Parameter(log_dt)
        self.C = nn.Parameter(torch.randn(n_out, n_modes, 2) * (0.5 / math.sqrt(n_modes)))
        self.n_channels = n_out

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.stream(h, None, 0)[0]

    def stream(self, h: torch.Tensor, state: torch.Tensor | None, t0: int):
        """State: the complex modes x_t0, (B, N, d)."""
        lam = torch.complex(-torch.exp(self.log_neg_re), self.im)
        dt = torch.exp(self.log_dt)
        a = torch.exp(dt * lam)  # (N,)
        b = (a - 1) / lam
        u = b.view(1, 1, -1, 1) * h.float().unsqueeze(2).to(torch.complex64)  # (B, T, N, d)
        x = _drop_carry(diag_scan(_carry(u, state), a.view(-1, 1)), state)
        C = torch.view_as_complex(self.C.contiguous())  # (K, N)
        return torch.einsum("kn,btnd->btkd", C, x).real.to(h.dtype), x[:, -1]


def make_channel(kind: str, **kw) -> nn.Module:
    if kind == "cummean":
        return CumulativeMean()
    if kind == "ema":
        return MultiEMA(tuple(kw.get("alphas", (0.25, 0.5, 0.75, 0.95))), kw.get("debias", True))
    if kind == "legt":
        return HiPPOLegT(kw.get("n", 4), kw.get("theta", 32.0))
    if kind == "s4d":
        return S4D(kw.get("modes", 16), kw.get("n", 4))
    raise ValueError(f"unknown context channel {kind!r} (cummean, ema, legt, s4d)")
