"""Which implementation runs: the fused kernels (default) or the reference paths they replace.

``SEMSIM_KERNELS=reference`` in the environment, or ``with semsim.kernels.use("reference"):``,
selects the plain PyTorch paths everywhere (the benchmarks time both in one process; the tests
compare them). Triton kernels run on CUDA tensors; on the CPU the same hand-written forward and
backward run as PyTorch ops, so every ``autograd.Function`` is checked there in float64.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch

try:  # Triton ships with CUDA builds of PyTorch; the CPU paths need only PyTorch
    import triton  # noqa: F401
    HAVE_TRITON = True
except ImportError:  # pragma: no cover - depends on the install
    HAVE_TRITON = False

MODES = ("fused", "reference")
_mode = os.environ.get("SEMSIM_KERNELS", "fused")
if _mode not in MODES:
    raise ValueError(f"SEMSIM_KERNELS={_mode!r}: expected one of {MODES}")


def fused() -> bool:
    """True unless the reference paths were asked for."""
    return _mode == "fused"


_cpu_interpreter = False


def compute_dtype(t: torch.Tensor) -> torch.dtype:
    """The dtype matmuls run in for tensors like ``t``: autocast's when it is on, else ``t``'s own."""
    dev = t.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else t.dtype


def on_triton(t: torch.Tensor) -> bool:
    """Run the Triton kernel for tensors like ``t``: fused mode, Triton installed, and a CUDA tensor
    (or a CPU tensor inside :func:`interpret_on_cpu`)."""
    return fused() and HAVE_TRITON and (t.is_cuda or _cpu_interpreter)


@contextmanager
def interpret_on_cpu():
    """Run the Triton kernels on CPU tensors through Triton's interpreter (the tests' way to check them
    without a GPU). Needs ``TRITON_INTERPRET=1`` in the environment before the kernels are imported."""
    global _cpu_interpreter
    if os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("set TRITON_INTERPRET=1 before importing semsim to interpret Triton kernels on the CPU")
    old, _cpu_interpreter = _cpu_interpreter, True
    try:
        yield
    finally:
        _cpu_interpreter = old


@contextmanager
def use(mode: str):
    """Temporarily run ``mode`` ("fused" or "reference")."""
    global _mode
    if mode not in MODES:
        raise ValueError(f"kernel mode {mode!r}: expected one of {MODES}")
    old, _mode = _mode, mode
    try:
        yield
    finally:
        _mode = old
