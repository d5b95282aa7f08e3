"""Data parallelism through ``torch.distributed``, set up by ``torchrun``.

``torchrun --nproc_per_node=N -m semsim train …`` (or ``semsim train --nproc N …``, which calls
torchrun's own entry point) starts N ranks. Each trains on its slice of every global batch
(:class:`~semsim.data.BatchSampler`), gradients are averaged by DistributedDataParallel, and rank 0
alone validates, logs, plots and writes checkpoints. Decisions that depend on a clock (the time
budget, Ctrl-C) are taken together, so every rank runs the same steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist

from semsim.errors import SemsimError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


def init_world(device: str) -> World:
    """The process group torchrun's environment describes (a single process without one)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return World(rank, size, local)


def barrier(world: World) -> None:
    if world.active:
        dist.barrier()


def shutdown(world: World) -> None:
    if world.active and dist.is_initialized():
        dist.destroy_process_group()


def on_main(world: World, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 only and hand every rank its result — or its SemsimError, raised everywhere,
    so that one rank's refusal never leaves the others waiting."""
    if not world.active:
        return fn()
    box: list = [None]
    if world.main:
        try:
            box[0] = ("ok", fn())
        except SemsimError as e:
            box[0] = ("error", str(e))
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise SemsimError(value)
    return value


def broadcast_state(world: World, module: torch.nn.Module) -> None:
    """Every parameter and buffer of ``module`` from rank 0 (after a change made outside the optimiser,
    e.g. splats merged, so that all ranks hold the same model)."""
    if not world.active:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def agree(world: World, device: torch.device, stop: bool, elapsed: float) -> tuple[bool, float]:
    """(any rank asked to stop, rank 0's clock): one small all-reduce per step."""
    if not world.active:
        return stop, elapsed
    t = torch.tensor([float(stop), elapsed if world.main else 0.0], device=device, dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t[0].item()), float(t[1].item())


def mean(world: World, value: torch.Tensor) -> torch.Tensor:
    """The mean of a scalar over ranks (each rank's share of the global batch is the same size)."""
    if world.active:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= world.size
    return value


def launch(nproc: int, argv: list[str]) -> int:
    """``semsim train --nproc N …`` → torchrun with N processes on this machine."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(["--standalone", f"--nproc_per_node={nproc}", "-m", "semsim", *argv])
    except ChildFailedError as e:
        codes = sorted({f.exitcode for f in e.failures.values()})
        raise SemsimError(f"{len(e.failures)} of {nproc} training processes failed (exit {codes}); "
                          "their messages are above") from None
    return 0
