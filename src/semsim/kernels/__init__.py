"""Hand-written kernels for work that PyTorch has no primitive for.

Each kernel has a plain reference implementation beside it (used on the CPU and by the tests).
"""

from semsim.kernels.lifo import lifo_schedule

__all__ = ["lifo_schedule"]
