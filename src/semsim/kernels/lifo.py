"""The Fock register stack's LIFO schedule: which register each position reads.

The schedule is a sequential state machine along the sequence (push, drop the bottom when full,
read the top, pop it after its last read), so it has no tensor-op formulation. Two
implementations of one rule:

* :func:`lifo_schedule_reference`: NumPy, vectorised over the batch, T steps (:class:`LifoStack`,
  which incremental decoding also carries from token to token). Used on the CPU.
* a Triton kernel, one program per sequence with the stack held in registers. Used on CUDA, where
  copying the push mask to the host would stall the GPU once per forward pass (and cost ~25 ms
  of NumPy on an H100 step, benchmarks/results/speed-family).

Both are reached through the custom op ``semsim::lifo_schedule``, which ``torch.compile`` treats
as one opaque call instead of breaking the graph.
"""

from __future__ import annotations

import numpy as np
import torch

try:  # Triton ships with CUDA builds of PyTorch; the CPU path needs only NumPy
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = tl = None


def salience_table(decay: float, floor: float, limit: int) -> list[float]:
    """Saliences of a register at its 1st, 2nd, ... read: 1, decay, decay², ... while ≥ floor.

    Built by repeated multiplication (as a register's salience evolves), in float64. Its length is
    the number of reads before the register is popped, capped at ``limit`` (a sequence length).
    """
    table, s = [], 1.0
    while len(table) < max(limit, 1):
        table.append(s)
        s *= decay
        if s < floor:
            break
    return table


class LifoStack:
    """The register stacks of B sequences, advanced position by position (NumPy, vectorised over B).

    Carried between calls, it lets incremental decoding extend a schedule without replaying the past.
    """

    def __init__(self, batch: int, capacity: int, n_reads: int):
        self.capacity, self.n_reads = capacity, n_reads
        self.src = np.full((batch, capacity), -1, dtype=np.int64)  # writer position of each slot
        self.cnt = np.zeros((batch, capacity), dtype=np.int64)  # reads so far
        self.depth = np.zeros(batch, dtype=np.int64)

    @property
    def nbytes(self) -> int:
        return self.src.nbytes + self.cnt.nbytes + self.depth.nbytes

    def run(self, push: np.ndarray, t0: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Advance over positions t0 … t0+T−1 given their (B, T) push mask: (top, reads) as in
        :func:`lifo_schedule_reference`, with absolute writer positions."""
        B, T = push.shape
        src, cnt, depth, capacity = self.src, self.cnt, self.depth, self.capacity
        top = np.full((B, T), -1, dtype=np.int64)
        reads = np.zeros((B, T), dtype=np.int64)
        rows = np.arange(B)
        for j in range(T):
            p = push[:, j]
            full = p & (depth == capacity)
            if full.any():  # drop the bottom register to make room
                src[full, :-1], cnt[full, :-1] = src[full, 1:], cnt[full, 1:]
                depth[full] -= 1
            src[rows[p], depth[p]] = t0 + j
            cnt[rows[p], depth[p]] = 0
            depth[p] += 1
            live = depth > 0
            i = np.maximum(depth - 1, 0)
            top[live, j] = src[rows[live], i[live]]
            reads[live, j] = cnt[rows[live], i[live]]
            cnt[rows[live], i[live]] += 1
            depth[live & (cnt[rows, i] >= self.n_reads)] -= 1
        return top, reads


def lifo_schedule_reference(push: np.ndarray, capacity: int, n_reads: int) -> tuple[np.ndarray, np.ndarray]:
    """(writer position read at each (b, t), or −1; how many times that register was read before).

    ``push`` is a (B, T) bool array. A push puts a new register on top (a full stack of ``capacity``
    first drops its bottom); then every position reads the top register, which is popped after its
    ``n_reads``-th read.
    """
    return LifoStack(push.shape[0], capacity, n_reads).run(push)


def _lifo_program(push_ptr, top_ptr, reads_ptr, T, n_reads, M: tl.constexpr):
    """One sequence per program. The stack is a ring of M slots: ``base`` is the bottom slot."""
    b = tl.program_id(0).to(tl.int64)
    slots = tl.arange(0, M)
    src = tl.full((M,), -1, tl.int32)
    cnt = tl.zeros((M,), tl.int32)
    base = tl.zeros((), tl.int32)
    depth = tl.zeros((), tl.int32)
    for t in range(T):
        p = tl.load(push_ptr + b * T + t) != 0
        full = p & (depth == M)
        base = tl.where(full, (base + 1) % M, base)  # drop the bottom
        depth = tl.where(full, depth - 1, depth)
        new = p & (slots == (base + depth) % M)
        src = tl.where(new, t, src)
        cnt = tl.where(new, 0, cnt)
        depth = tl.where(p, depth + 1, depth)
        live = depth > 0
        at = live & (slots == (base + depth + M - 1) % M)
        k = tl.sum(tl.where(at, cnt, 0), 0)
        tl.store(top_ptr + b * T + t, tl.where(live, tl.sum(tl.where(at, src, 0), 0), -1).to(tl.int64))
        tl.store(reads_ptr + b * T + t, tl.where(live, k, 0).to(tl.int64))
        cnt = tl.where(at, cnt + 1, cnt)
        depth = tl.where(live & (k + 1 >= n_reads), depth - 1, depth)


# Decorated at import, so that TRITON_INTERPRET=1 in the environment runs it on the CPU (tests).
_lifo_kernel = triton.jit(_lifo_program) if triton is not None else None


def lifo_schedule_triton(push: torch.Tensor, capacity: int, n_reads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`lifo_schedule_reference` as one Triton program per sequence (CUDA tensors)."""
    if _lifo_kernel is None:
        raise RuntimeError("the LIFO kernel needs Triton (pip install triton)")
    B, T = push.shape
    if capacity & (capacity - 1):
        raise ValueError(f"the Triton LIFO kernel needs a power-of-two register count, got {capacity}")
    top = torch.empty(B, T, dtype=torch.int64, device=push.device)
    reads = torch.empty(B, T, dtype=torch.int64, device=push.device)
    _lifo_kernel[(B,)](push.to(torch.int8).contiguous(), top, reads, T, n_reads, M=capacity)
    return top, reads


def lifo_schedule_host(push: torch.Tensor, capacity: int, n_reads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`lifo_schedule_reference` on tensors of any device (round trip through host memory)."""
    top, reads = lifo_schedule_reference(push.cpu().numpy().astype(bool), capacity, n_reads)
    return torch.from_numpy(top).to(push.device), torch.from_numpy(reads).to(push.device)


@torch.library.custom_op("semsim::lifo_schedule", mutates_args=())
def _lifo_op(push: torch.Tensor, capacity: int, n_reads: int) -> tuple[torch.Tensor, torch.Tensor]:
    if push.is_cuda and triton is not None and capacity & (capacity - 1) == 0:
        return lifo_schedule_triton(push, capacity, n_reads)
    return lifo_schedule_host(push, capacity, n_reads)


@_lifo_op.register_fake
def _(push, capacity, n_reads):
    return push.new_empty(push.shape, dtype=torch.int64), push.new_empty(push.shape, dtype=torch.int64)


def lifo_schedule(push: torch.Tensor, capacity: int, n_reads: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(writer position or −1, reads of that register before this one) for a (B, T) bool push mask.

    The salience at a read is ``salience_table(...)[reads]``; ``n_reads`` is that table's length.
    """
    return _lifo_op(push, capacity, n_reads)
