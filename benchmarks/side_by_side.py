"""Helpers for timing a kernel beside an earlier version of its module, in one process.

:func:`load_version` imports a module from a file (e.g. ``git show REV:src/semsim/kernels/wells_force.py``);
:func:`function_times` gives an ``autograd.Function``'s forward and backward device times. At ~0.05–0.2 ms
a call, timing a kernel through autograd measures the Python overhead around it; here each direction's
launches are replayed as a CUDA graph (triton.testing.do_bench_cudagraph, median ms).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import triton.testing


def load_version(path: str):
    """The Python module in ``path``, imported under its own name (it may shadow nothing)."""
    name = f"version_{Path(path).stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # torch.compile re-imports the modules of the functions it traces
    spec.loader.exec_module(mod)
    return mod


class _Ctx:
    """Stands in for autograd's ctx, so forward and backward can be launched (and graphed) on their own."""

    def save_for_backward(self, *tensors):
        self.saved_tensors = tensors


def function_times(fn_cls, inputs: tuple, grads: tuple) -> tuple[float, float]:
    """(forward ms, backward ms) of ``fn_cls.forward(ctx, *inputs)`` and ``fn_cls.backward(ctx, *grads)``."""
    ctx = _Ctx()
    fwd = lambda: fn_cls.forward(ctx, *inputs)  # noqa: E731
    fwd_ms = triton.testing.do_bench_cudagraph(fwd)
    fwd()  # saved tensors outside any graph's memory pool for the backward
    return fwd_ms, triton.testing.do_bench_cudagraph(lambda: fn_cls.backward(ctx, *grads))
