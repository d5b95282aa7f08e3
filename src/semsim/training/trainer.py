"""One trainer for every model family.

AdamW + warm-up/cosine, gradient accumulation and clipping, bf16 autocast on CUDA, optional
``torch.compile``, periodic validation, a JSONL metrics log, a progress bar, checkpoints, and
exact resume: batches are a pure function of the step (see :class:`~semsim.data.BatchSampler`),
and optimiser moments plus RNG states travel in the checkpoint, so a killed run resumed from its
last checkpoint reproduces the losses of an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from semsim.config import RunConfig
from semsim.data import BatchSampler, prepare_corpus, validation_windows
from semsim.data.corpus import corpus_context
from semsim.diagnostics.causal import causal_probe
from semsim.errors import SemsimError
from semsim.evaluation import evaluate
from semsim.models import build_model
from semsim.training import distributed
from semsim.training.checkpoint import load_model, load_training_state, recover, save_checkpoint, save_model
from semsim.training.clipping import clip_and_step
from semsim.training.graphed_step import GraphedTrainStep
from semsim.training.monitor import read_rows, trend_warnings
from semsim.training.schedule import cosine_hold_multiplier, lr_multiplier

CHECKPOINT = "checkpoint"
BEST = "best"
METRICS = "metrics.jsonl"
# What a run writes into its folder: a folder holding any of these holds a run.
RUN_FILES = ("config.json", METRICS, CHECKPOINT, BEST, "ema", "loss_curve.png", "monitor.png", "summary.json")


class Interrupted(SemsimError):
    """Training stopped by SIGINT (Ctrl-C) after saving a checkpoint it can resume from."""


def _prepare_run_folder(out: Path, resume: bool, force: bool) -> bool:
    """Check what ``out`` holds against what was asked; True when there is a checkpoint to resume."""
    if out.exists() and not out.is_dir():
        raise SemsimError(f"--out {out} is a file, not a folder")
    recover(out / CHECKPOINT)  # a save cut short by a kill leaves the previous checkpoint in place
    recover(out / BEST)
    has_checkpoint = (out / CHECKPOINT).is_dir()
    held = [n for n in RUN_FILES if (out / n).exists()]
    if resume:
        if not has_checkpoint:
            why = "it holds no run" if not held else "its run stopped before its first checkpoint"
            raise SemsimError(f"nothing to resume in {out}: {why}; start a new run there "
                              f"{'without --resume' if not held else 'with --force (replaces it)'}")
        return True
    if held and not force:
        raise SemsimError(f"{out} already holds a run ({', '.join(held)}); continue it with --resume, "
                          "or replace it with --force")
    for name in held:  # --force: the user asked to replace the run
        target = out / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return False


def resolve_device(name: str) -> torch.device:
    """auto | cpu | cuda | cuda:N, refused in one line when it names no device this machine has."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    index = name.removeprefix("cuda:") if name.startswith("cuda:") else ("0" if name == "cuda" else None)
    if index is None or not index.isdigit():
        raise SemsimError(f"unknown device {name!r} (auto, cpu, cuda or cuda:N)")
    if not torch.cuda.is_available():
        raise SemsimError(f"device {name!r} requested but CUDA is not available")
    if int(index) >= torch.cuda.device_count():
        raise SemsimError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} GPU(s)")
    return torch.device(name)


def autocast_for(device: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    if dtype == "auto":
        dtype = "bf16" if device.type == "cuda" else "fp32"
    if dtype == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if dtype == "fp32":
        return contextlib.nullcontext()
    raise SemsimError(f"unknown train.dtype {dtype!r} (auto, fp32, bf16)")


def make_optimizer(model: torch.nn.Module, cfg, device: torch.device, capturable: bool = False) -> torch.optim.AdamW:
    """Weight decay on matrices and embeddings only; biases, norms and scalars are not decayed.

    ``capturable``: for a step captured as a CUDA graph (:mod:`semsim.training.graphed_step`), the
    optimiser's state and learning rate live on the device (the rate a tensor to fill between replays)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    lr = torch.tensor(cfg.lr, device=device) if capturable else cfg.lr
    return torch.optim.AdamW(
        groups, lr=lr, betas=(cfg.beta1, cfg.beta2), fused=device.type == "cuda", capturable=capturable
    )


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    val_loss: float | None
    val_ppl: float | None
    tokens_per_s: float
    wall_s: float
    best_val_loss: float | None = None  # lowest validation loss seen during the run
    best_step: int | None = None
    test: dict | None = None  # see Trainer.test_report


class Trainer:
    def __init__(self, run: RunConfig | None, out_dir: str | Path, resume: bool = False, log=print,
                 force: bool = False):
        """``resume``: continue the checkpoint in ``out_dir`` (an error if there is none). A folder that
        already holds a run is refused unless ``resume`` or ``force`` (which replaces that run)."""
        self.out_dir = Path(out_dir)
        ckpt = self.out_dir / CHECKPOINT
        self.world = world = distributed.init_world(run.train.device if run is not None else "auto")
        self.log = log if world.main else (lambda m: None)
        if run is not None:
            run.check()  # bad values end here, before the run folder is touched
        # rank 0 looks at (and with --force clears) the folder; every rank then agrees on what it found
        self.resumed = distributed.on_main(world, lambda: _prepare_run_folder(self.out_dir, resume, force))
        if self.resumed:
            resumed_model, saved = load_model(ckpt)
            run = run if run is not None else saved.check()
            run.model = saved.model  # the architecture is the checkpoint's, whatever was asked
        if run is None:
            raise SemsimError("no run config given and no checkpoint to take it from")
        self.run = run
        tc = run.train
        self.device = resolve_device(tc.device)
        if world.active and self.device.type == "cuda":
            self.device = torch.device("cuda", world.local_rank)
        self.autocast = autocast_for(self.device, tc.dtype)

        def prepare_on_main() -> None:  # rank 0 tokenises (once); the other ranks then open its files
            self.corpus = prepare_corpus(run.data, log=log)

        distributed.on_main(world, prepare_on_main)
        if not world.main:
            self.corpus = prepare_corpus(run.data, log=lambda m: None)
        vocab = self.corpus.manifest["tokenizer"]["vocab_size"]
        if run.model.vocab_size < vocab:
            raise SemsimError(f"model.vocab_size = {run.model.vocab_size} is smaller than the corpus tokenizer's "
                              f"{vocab} ids")
        block = run.model.block_size
        self.sampler = BatchSampler(self.corpus.train, block, tc.batch_size, tc.seed, world.rank, world.size)
        self.global_batch = tc.batch_size * world.size * tc.grad_accum
        self.val = validation_windows(self.corpus.dev, block, tc.eval_tokens)  # selection reads dev only
        self.token_bytes = self.corpus.token_bytes(run.data.data_dir)  # bits per byte, for every model

        torch.manual_seed(tc.seed)
        if self.resumed:
            self.model = resumed_model.to(self.device)
        else:
            # rank 0 builds what the corpus gives the model (e.g. a token manifold, cached) and hands it round
            context = distributed.on_main(world, lambda: corpus_context(run.model, self.corpus, log=self.log))
            self.model = build_model(run.model, **context).to(self.device)
        self.optimizer = make_optimizer(self.model, tc, self.device)
        self.ema = None
        if tc.ema:  # torch's AveragedModel keeps the copy; validation, best/ and the test report read it
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(tc.ema), use_buffers=True)
        self.step, self.tokens_seen, self.elapsed = 0, 0, 0.0
        self._rows: list[dict] = []  # the rows written so far (trend warnings read them)
        self.best = {"loss": None, "step": None}  # JSON-safe: no inf in trainer_state.json
        if self.resumed:
            meta = load_training_state(ckpt, self.optimizer, self.ema)
            self.step, self.tokens_seen, self.elapsed = meta["step"], meta["tokens_seen"], meta["elapsed"]
            self.best = meta.get("best", self.best)
            if world.main:  # a finished run's last rows include its final validation, which fit() repeats
                self._truncate_metrics(self.step, keep_val_at_step=not meta.get("final", False))
                if (self.out_dir / METRICS).is_file():  # the rows trend warnings read
                    self._rows = [r for r in read_rows(self.out_dir / METRICS) if r.get("split") in ("val", "event")]
            before = meta.get("global_batch", self.global_batch)
            if before != self.global_batch:
                self.log(f"note: the global batch changes from {before} to {self.global_batch} sequences at "
                         f"step {self.step} (set train.batch_size to per-rank {before // (world.size * tc.grad_accum)} "
                         "to keep it)")
            self.log(f"resumed from {ckpt} at step {self.step}")
        if world.rank > 0:  # training noise (PARFLM's Gumbel routing) differs between ranks
            torch.manual_seed(tc.seed + 1_000_003 * world.rank + self.step)
        self.fwd = self.model.compile_for_training(tc.compile_scope, tc.compile_mode) if tc.compile else self.model
        self.graph_step = self._graph_step()
        if world.active:
            self.fwd = self._data_parallel(self.fwd)
            self.log(f"data parallel: {world.size} ranks × batch {tc.batch_size} × grad_accum {tc.grad_accum} = "
                     f"global batch {self.global_batch} sequences ({self.global_batch * block:,} tokens) per step")

    def _train_step(self, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimiser step at learning rate ``lr``: (summed micro-batch loss, gradient norm), on the device."""
        tc = self.run.train
        if self.graph_step is not None:  # one replay: forward, backward, clip, AdamW
            self.graph_step.set_lr(lr)
            x, y = self.sampler.get(self.step, 0)
            return self.graph_step(x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for micro in range(tc.grad_accum):
            x, y = self.sampler.get(self.step, micro)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            with self.autocast:
                out = self.fwd(x, targets=y)
            (out.objective / tc.grad_accum).backward()
            loss_sum += out.loss.detach()
        gnorm = clip_and_step(self.optimizer, self.model.parameters(), tc.grad_clip)
        self.optimizer.zero_grad(set_to_none=True)
        return loss_sum, gnorm

    def _graph_step(self) -> GraphedTrainStep | None:
        """The whole step as a CUDA graph when ``train.cuda_graph`` allows it (see TrainConfig)."""
        tc = self.run.train
        why_not = [reason for reason, bad in [
            ("the device is not CUDA", self.device.type != "cuda"),
            (f"compile mode {tc.compile_mode!r} captures its own CUDA graphs",
             tc.compile and tc.compile_mode in ("reduce-overhead", "max-autotune")),
            ("training runs on several ranks", self.world.active),
            ("train.grad_accum > 1", tc.grad_accum > 1),
            (f"the {type(self.model).__name__} family changes between steps", not self.model.graph_safe),
        ] if bad]
        if tc.cuda_graph is False or (why_not and tc.cuda_graph is None):
            return None
        if why_not:
            raise SemsimError(f"train.cuda_graph=true, but {' and '.join(why_not)}")
        state = self.optimizer.state_dict()
        self.optimizer = make_optimizer(self.model, tc, self.device, capturable=True)
        self.optimizer.load_state_dict(state)  # a resumed run's moments carry over
        for group in self.optimizer.param_groups:  # the loaded groups bring back the plain optimiser's settings
            group["lr"] = torch.as_tensor(group["lr"], dtype=torch.float32, device=self.device)
            group["capturable"] = True
        return GraphedTrainStep(self.model, self.fwd, self.optimizer, tc.grad_clip, lambda: self.autocast)

    def _data_parallel(self, module: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel around the model. It must know whether every parameter receives a
        gradient (some, e.g. an SQ well's offset, are reached only through a regulariser that may be
        off); one local forward/backward on the first batch tells, before any update."""
        x, y = self.sampler.get(self.step, 0)
        with self.autocast:
            out = self.model(x.to(self.device), targets=y.to(self.device))
            out.objective.backward()
        unused = any(p.grad is None for p in self.model.parameters() if p.requires_grad)
        self.optimizer.zero_grad(set_to_none=True)
        ids = [self.world.local_rank] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids, find_unused_parameters=unused)

    # ------------------------------------------------------------------ bookkeeping
    def _truncate_metrics(self, step: int, keep_val_at_step: bool = True) -> None:
        """Drop log rows written after the checkpoint we resume from (the killed run's tail)."""
        path = self.out_dir / METRICS
        if path.is_file():
            keep = []
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except ValueError:  # a line cut short by the kill
                    continue
                if row["step"] < step or (row["step"] == step and (keep_val_at_step or row["split"] != "val")):
                    keep.append(line + "\n")
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text("".join(keep))
            tmp.replace(path)

    def _write(self, row: dict) -> None:
        if not self.world.main:
            return
        if row.get("split") in ("val", "event"):
            self._rows.append(row)
        with open(self.out_dir / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")

    @property
    def eval_model(self) -> torch.nn.Module:
        """What validation and the test report evaluate: the EMA of the weights when kept, else the model."""
        return self.model if self.ema is None else self.ema.module

    def _save(self, final: bool = False) -> None:
        if not self.world.main:
            return
        state = {"step": self.step, "tokens_seen": self.tokens_seen, "elapsed": self.elapsed, "best": self.best,
                 "final": final, "global_batch": self.global_batch, "world_size": self.world.size}
        save_checkpoint(self.out_dir / CHECKPOINT, self.model, self.run, self.optimizer, state, ema=self.ema)
        if final and self.ema is not None:  # the averaged weights as a model of their own
            save_model(self.out_dir / "ema", self.ema.module, self.run)

    def validate(self, write: bool = True) -> dict:
        tc = self.run.train
        # Evaluation runs the eager model: compiling a second (no-grad) graph would cost more than it saves.
        res = evaluate(self.eval_model, self.val, tc.eval_batch_size, self.device, self.autocast, self.token_bytes)
        row = {"step": self.step, "split": "val", "loss": res["loss"], "ppl": res["ppl"], "bpb": res["bpb"],
               "elapsed": self.elapsed}
        if self.best["loss"] is None or res["loss"] < self.best["loss"]:
            self.best = {"loss": res["loss"], "step": self.step, "stale": 0}
            if tc.keep_best and self.step > 0:
                save_model(self.out_dir / BEST, self.eval_model, self.run)
        elif write:
            self.best["stale"] = self.best.get("stale", 0) + 1  # validations since the best one
        em = self.eval_model
        was_training = em.training
        em.eval()
        with torch.no_grad(), self.autocast:
            extras = em(self.val[: tc.eval_batch_size, :-1].to(self.device), return_extras=True).extras
        em.train(was_training)
        if "energy" in extras:  # models with a Hamiltonian report their per-layer energy terms
            row["energy"] = {k: [round(x, 6) for x in v.tolist()] for k, v in extras["energy"].items()}
        if "monitor" in extras:  # a family's own health figures (e.g. the hypersphere model's splats)
            row["monitor"] = {k: round(float(v), 6) for k, v in extras["monitor"].items()}
        if write:
            warnings = trend_warnings(self._rows + [row])
            if warnings:
                row["warnings"] = warnings
                for w in warnings:
                    self.log(f"warning at step {self.step}: {w}")
            self._write(row)
        return row

    # ------------------------------------------------------------------ the loop
    def progress(self) -> float:
        tc = self.run.train
        if tc.time_budget:
            return min(1.0, max(self.elapsed / self._train_budget(), self.step / tc.steps))
        return self.step / tc.steps

    def _train_budget(self) -> float:
        """Seconds of a time budget left for steps once the final evaluation and save are reserved."""
        return max(1e-3, self.run.train.time_budget - self._reserve)

    def fit(self) -> TrainResult:
        tc, world = self.run.train, self.world
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if world.main:
            self.run.save(self.out_dir / "config.json")
        if tc.causal_probe and not self.resumed:
            probe = causal_probe(self.model)
            self._write({"step": self.step, "split": "probe", **probe})
            if not probe["passed"]:
                raise SemsimError(
                    f"causal probe failed: |Δlogits| before t = {probe['max_abs_dlogits_before_t']:.3g}, "
                    f"grad from future = {probe['max_abs_grad_from_future']:.3g}; refusing to train a leaky model"
                )
        t_start = time.perf_counter() - self.elapsed  # a time budget counts from here, set-up included
        self._reserve = 0.0
        if tc.time_budget:  # the final validation and save must fit in the budget: time one now (rank 0)
            self._reserve = distributed.on_main(world, lambda: self._time_final_validation(t_start))
        tokens_per_step = self.global_batch * self.run.model.block_size
        warm = tc.warmup_steps / max(tc.steps, 1)
        bar = tqdm(
            total=tc.steps, initial=self.step, disable=not (tc.progress and world.main), unit="step",
            dynamic_ncols=True,
            mininterval=1.0,
        )
        self.model.train()
        t_log, tok_log, tok_s = time.perf_counter(), 0, 0.0
        next_eval_s = self.elapsed + tc.eval_interval_s
        stopped = False
        with _sigint_as_flag() as interrupted:
            while self.step < tc.steps:
                # every rank takes the same steps: Ctrl-C on any rank, and rank 0's clock, decide for all.
                # Agreeing waits for the GPU, so it happens every step only when a time budget needs the
                # clock; otherwise once per log interval (when the loss is read anyway).
                stopped = interrupted()
                if world.active and (tc.time_budget or self.step % tc.log_interval == 0):
                    stopped, self.elapsed = distributed.agree(world, self.device, stopped, self.elapsed)
                elif world.active:
                    stopped = False  # a local Ctrl-C waits for the next agreement
                if stopped:
                    break
                if tc.time_budget and self.elapsed >= self._train_budget():
                    break
                progress = self.progress()
                self.model.set_training_progress(progress)
                if tc.lr_schedule == "cosine-hold":
                    lr = tc.lr * cosine_hold_multiplier(progress, tc.steps, tc.warmup_steps, tc.lr_decay_steps,
                                                        tc.lr_hold_steps, tc.min_lr_ratio)
                else:
                    lr = tc.lr * lr_multiplier(progress, warm, tc.min_lr_ratio)
                loss_sum, gnorm = self._train_step(lr)
                self.step += 1
                if self.ema is not None:
                    self.ema.update_parameters(self.model)
                event = self.model.after_step(self.step)
                if event is not None:
                    distributed.broadcast_state(world, self.model)
                    self._write({"step": self.step, "split": "event", **event})
                self.tokens_seen += tokens_per_step
                tok_log += tokens_per_step

                if self.step % tc.log_interval == 0 or self.step == tc.steps:
                    # syncs the device once per log interval; the mean over ranks is the global batch's loss
                    loss = distributed.mean(world, loss_sum / tc.grad_accum).item()
                    if not math.isfinite(loss):
                        raise SemsimError(f"training diverged at step {self.step} (loss {loss}); lower train.lr")
                    now = time.perf_counter()
                    tok_s = tok_log / (now - t_log)
                    t_log, tok_log = now, 0
                    self.elapsed = now - t_start
                    self._write(
                        {"step": self.step, "split": "train", "loss": loss, "lr": lr, "grad_norm": gnorm.item(),
                         "tokens_per_s": tok_s, "elapsed": self.elapsed}
                    )
                    bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{tok_s:,.0f}", refresh=False)
                bar.update(1)
                self.elapsed = time.perf_counter() - t_start
                due = tc.eval_interval and self.step % tc.eval_interval == 0
                if tc.eval_interval_s and self.elapsed >= next_eval_s:
                    due, next_eval_s = True, self.elapsed + tc.eval_interval_s
                if due and self.step < tc.steps and world.main:
                    val_row = self.validate()
                    bar.write(f"step {self.step}: val loss {val_row['loss']:.4f}  ppl {val_row['ppl']:.2f}")
                # early stopping on the dev slice, checked at step-counted validations (the same steps on
                # every rank, so the agreement below is reached by all)
                if tc.patience and tc.eval_interval and self.step % tc.eval_interval == 0 and self.step < tc.steps:
                    stale = distributed.on_main(world, lambda: self.best.get("stale", 0))
                    if stale >= tc.patience:
                        self.log(f"early stop at step {self.step}: no better dev loss in {stale} validations "
                                 f"(best {self.best['loss']:.4f} at step {self.best['step']})")
                        break
                if tc.ckpt_interval and self.step % tc.ckpt_interval == 0 and self.step < tc.steps:
                    self._save()
        bar.close()
        if stopped:
            self.elapsed = time.perf_counter() - t_start
            self._save()
            raise Interrupted(f"interrupted at step {self.step}; checkpoint saved; resume with: "
                              f"semsim train --out {self.out_dir} --resume")
        if not world.main:  # rank 0 alone validates and saves
            return TrainResult(self.out_dir, self.step, None, None, tok_s, self.elapsed)
        val_row = self.validate()
        self.elapsed = time.perf_counter() - t_start
        self._save(final=True)
        self.log(f"step {self.step}: val loss {val_row['loss']:.4f}  ppl {val_row['ppl']:.2f}  -> {self.out_dir}")
        test = self.test_report()
        for name, res in test.items():
            self.log(f"{name}: loss {res['loss']:.4f}  ppl {res['ppl']:.2f} on {res['tokens']:,} tokens")
        return TrainResult(self.out_dir, self.step, val_row["loss"], val_row["ppl"], tok_s, self.elapsed,
                           self.best["loss"], self.best["step"], test)

    def test_report(self) -> dict:
        """Results on slices selection never read: the final model on the test slice, the dev-selected
        model (``keep_best``) on the test slice, and the final model on the whole held-out stream (dev +
        test, as the published runs reported). Each evaluation reads at most ``train.eval_tokens``."""
        tc, block = self.run.train, self.run.model.block_size

        def run_on(model, split: str) -> dict:
            windows = validation_windows(self.corpus.split(split), block, tc.eval_tokens)
            return {**evaluate(model, windows, tc.eval_batch_size, self.device, self.autocast, self.token_bytes),
                    "split": split}

        report = {"test_final": {**run_on(self.eval_model, "test"), "step": self.step}}
        if tc.keep_best and (self.out_dir / BEST).is_dir():
            best = load_model(self.out_dir / BEST, device=self.device)[0]
            report["test_dev_selected"] = {**run_on(best, "test"), "step": self.best["step"]}
        report["heldout_final"] = {**run_on(self.eval_model, "heldout"), "step": self.step}
        return report

    def _time_final_validation(self, t_start: float) -> float:
        """Seconds to reserve at the end of a time budget: twice one timed validation, plus 2 s."""
        t0 = time.perf_counter()
        self.validate(write=not self.resumed)  # a resumed run logged this step's validation already
        reserve = 2 * (time.perf_counter() - t0) + 2.0
        self._reserve, self.elapsed = reserve, time.perf_counter() - t_start
        if self.step == 0 and self.elapsed >= self._train_budget():
            raise SemsimError(
                f"time budget {self.run.train.time_budget:g} s leaves no time to train: set-up (one timed "
                f"validation included) took {self.elapsed:.1f} s and {reserve:.1f} s are reserved for the final "
                "validation and save; raise the budget or lower train.eval_tokens"
            )
        return reserve


@contextlib.contextmanager
def _sigint_as_flag():
    """Turn Ctrl-C into a flag the loop reads between steps, so a step is never cut in half (an
    optimiser update half applied could not be resumed exactly). A second Ctrl-C stops at once."""
    hit = []

    def handler(signum, frame):
        if hit:
            raise KeyboardInterrupt
        hit.append(True)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        yield lambda: False
        return
    try:
        yield lambda: bool(hit)
    finally:
        signal.signal(signal.SIGINT, previous)
