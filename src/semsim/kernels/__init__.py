"""Hand-written kernels, and the switch between them and the reference paths they replace.

Each kernel has a plain reference implementation beside it (used on the CPU and by the tests);
``SEMSIM_KERNELS=reference`` or :func:`use` selects the reference paths everywhere.
"""

from semsim.kernels.dispatch import fused, on_triton, use
from semsim.kernels.lifo import lifo_schedule

__all__ = ["fused", "lifo_schedule", "on_triton", "use"]
