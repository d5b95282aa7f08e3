"""The ``semsim`` command line: train, eval, generate, data prepare, presets, diagnose.

Bad input is reported as one line on stderr with exit status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from semsim.errors import SemsimError


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (``semsim: error: …``) and status 2, like every other
    refusal, instead of a usage block."""

    def error(self, message: str):
        raise _UsageError(f"{self.prog}: {message}")


def _count(text: str) -> int:
    """An integer ≥ 1 (token counts, batch sizes, sequence numbers)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def _fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="raw corpora + tokenizer files (default $SEMSIM_DATA_DIR)")
    p.add_argument("--cache-dir", help="prepared token files (default $SEMSIM_CACHE_DIR)")


def _apply_data_flags(run, args) -> None:
    if getattr(args, "data_dir", None):
        run.data.data_dir = args.data_dir
    if getattr(args, "cache_dir", None):
        run.data.cache_dir = args.cache_dir


# ------------------------------------------------------------------------------ commands
def cmd_presets(args) -> int:
    from semsim.presets import describe

    width = max(len(n) for n, _ in describe())
    for name, summary in describe():
        print(f"{name:<{width}}  {summary}")
        if args.params:
            print(f"{'':<{width}}  {_param_line(name)}")
    return 0


def _param_line(name: str) -> str:
    """Exact parameter count, beside the published one where the preset is sized to it."""
    import dataclasses

    import torch

    from semsim.models import build_model
    from semsim.presets import PUBLISHED_PARAMS, get_preset

    cfg = get_preset(name).model
    if getattr(cfg, "mass", None) == "logfreq":  # the mass table is a buffer: the count does not need it
        cfg = dataclasses.replace(cfg, mass="uniform")
    with torch.device("meta"):
        n = build_model(cfg).num_params()
    line = f"{n:,} parameters"
    if name in PUBLISHED_PARAMS:
        pub, source = PUBLISHED_PARAMS[name]
        line += f"; published {pub:,.0f} ({source}), {100 * (n - pub) / pub:+.2f}%"
    return line


def cmd_train(args) -> int:
    from semsim.config import RunConfig
    from semsim.presets import get_preset
    from semsim.training import distributed
    from semsim.training.trainer import CHECKPOINT

    if args.nproc is not None:  # the shorthand: hand the same command to torchrun, without --nproc
        if args.nproc < 1:
            raise SemsimError(f"--nproc must be ≥ 1, got {args.nproc}")
        argv = sys.argv[1:] if args.argv is None else args.argv
        return distributed.launch(args.nproc, _without_nproc(argv))
    out = Path(args.out)
    if args.resume and args.force:
        raise SemsimError("--resume continues the run in --out, --force replaces it: choose one")
    seeds = _seed_list(args.seeds) if args.seeds else None
    if args.resume and (out / CHECKPOINT).is_dir() and not (args.preset or args.config):
        run = RunConfig.load(out / CHECKPOINT / "config.json")
    elif args.config:
        run = RunConfig.load(args.config)
    else:
        run = get_preset(args.preset or "demo")
    run.override(args.overrides)
    _apply_data_flags(run, args)
    if args.time_budget is not None:
        run.train.time_budget = args.time_budget
    if seeds is None:
        _train_one(run, out, args)
        return 0
    # several seeds: one run folder each (out/seed<N>), then their mean ± std in out/seeds.json
    import copy

    from semsim.evaluation import summarise_seeds

    summaries = {}
    for seed in seeds:
        one = copy.deepcopy(run)
        one.train.seed = seed
        summary = _train_one(one, out / f"seed{seed}", args)
        if summary is None:  # not rank 0
            continue
        summaries[seed] = summary
    if summaries:
        report = summarise_seeds(summaries)
        (out / "seeds.json").write_text(json.dumps(report, indent=2))
        for name, agg in report["mean_std"].items():
            print(f"{name}: ppl {agg['ppl_mean']:.2f} ± {agg['ppl_std']:.2f} over {agg['n']} seeds "
                  f"(loss {agg['loss_mean']:.4f} ± {agg['loss_std']:.4f})")
        print(f"-> {out / 'seeds.json'}")
    return 0


def _seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SemsimError(f"--seeds takes whole numbers separated by commas (e.g. 0,1,2), got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise SemsimError(f"--seeds needs one or more distinct seeds ≥ 0, got {text!r}")
    return seeds


def _train_one(run, out: Path, args) -> dict | None:
    """Train one run into ``out``; its summary (rank 0), None on the other ranks."""
    from semsim.plotting import plot_loss_curve, plot_monitor
    from semsim.training import Trainer, distributed
    from semsim.training.trainer import CHECKPOINT, METRICS

    # with --seeds, --resume continues the seeds that have a checkpoint and starts the others
    resume = args.resume and (not args.seeds or (out / CHECKPOINT).is_dir())
    trainer = Trainer(run, out, resume=resume, force=args.force)
    try:
        result = trainer.fit()
        distributed.barrier(trainer.world)  # ranks leave together, once rank 0 has validated and saved
    finally:
        distributed.shutdown(trainer.world)
    if not trainer.world.main:  # rank 0 reports for the run
        return None
    png = plot_loss_curve(out / METRICS, out / "loss_curve.png")
    monitor_png = plot_monitor(out / METRICS, out / "monitor.png")  # families with a monitor block
    summary = {
        "seed": run.train.seed,
        "step": result.step,
        "val_loss": result.val_loss,
        "val_ppl": result.val_ppl,
        "tokens_per_s": result.tokens_per_s,
        "wall_s": result.wall_s,
        "best_dev_loss": result.best_val_loss,
        "best_step": result.best_step,
        "test": result.test,  # final and dev-selected models on the test slice; final on the whole held-out
        "world_size": trainer.world.size,
        "global_batch": trainer.global_batch,
        "checkpoint": str(out / CHECKPOINT),
        "loss_curve": str(png),
        **({"monitor_plot": str(monitor_png)} if monitor_png else {}),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _load(ckpt: str, args):
    from semsim.training import load_model
    from semsim.training.trainer import resolve_device

    device = resolve_device(getattr(args, "device", "auto") or "auto")
    model, run = load_model(ckpt, device=device)
    _apply_data_flags(run, args)
    return model, run, device


def cmd_eval(args) -> int:
    from semsim.data import prepare_corpus, validation_windows
    from semsim.evaluation import evaluate
    from semsim.training.trainer import autocast_for, resolve_device

    if args.artifact:  # the dequantised int8 + zlib artifact
        from semsim.artifact import load_artifact

        device = resolve_device(args.device)
        model, run = load_artifact(args.checkpoint, device)
        _apply_data_flags(run, args)
    else:
        model, run, device = _load(args.checkpoint, args)
    if args.corpus:
        run.data.corpus = args.corpus
    corpus = prepare_corpus(run.data, log=lambda m: print(m, file=sys.stderr))
    windows = validation_windows(corpus.split(args.split), model.block_size, args.tokens or run.train.eval_tokens)
    res = evaluate(model, windows, args.batch_size, device, autocast_for(device, run.train.dtype),
                   corpus.token_bytes(run.data.data_dir))
    res.update(split=args.split, corpus=corpus.name, checkpoint=args.checkpoint, artifact=bool(args.artifact))
    print(f"{args.split} slice of {corpus.name}: loss {res['loss']:.4f}, ppl {res['ppl']:.2f}, "
          f"{res['bpb']:.4f} bits per byte on {res['tokens']:,} tokens ({res['bytes']:,} bytes)", file=sys.stderr)
    print(json.dumps(res, indent=2))
    return 0


def cmd_generate(args) -> int:
    import codecs
    import time

    import torch

    from semsim.data import gpt2_tokenizer, prepare_corpus, resolve_data_dir
    from semsim.generation import check_sampling, generate_batch

    check_sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p)
    model, run, device = _load(args.checkpoint, args)
    if run.data.tokenizer == "gpt2":
        enc = gpt2_tokenizer(str(resolve_data_dir(run.data)))
    else:  # a tokenizer fitted to the corpus lives beside it
        enc = prepare_corpus(run.data, log=lambda m: print(m, file=sys.stderr)).tokenizer()
    texts = args.prompt or ["\n"]
    prompts = [enc.encode_ordinary(t) or [enc.eot_token] for t in texts]
    limit = model.max_positions
    for t, p in zip(texts, prompts):
        if limit is not None and len(p) > limit:
            raise SemsimError(f"prompt {t[:30]!r}… is {len(p)} tokens, longer than this model's {limit} learned "
                              "positions; shorten it")
    g = torch.Generator(device=device).manual_seed(args.seed)
    stream = len(prompts) == 1 and not args.no_stream
    on_token = None
    if stream:  # one prompt: print tokens as they come, whole UTF-8 characters only
        utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        sys.stdout.write(texts[0])
        sys.stdout.flush()

        def on_token(_row: int, tok: int) -> None:
            sys.stdout.write(utf8.decode(enc.decode_single_token_bytes(tok)))
            sys.stdout.flush()

    t0, info = time.perf_counter(), {}
    out = generate_batch(model, prompts, args.max_new_tokens, args.temperature, args.top_k, args.top_p,
                         generator=g, on_token=on_token, info=info)
    wall = time.perf_counter() - t0
    if stream:
        print(utf8.decode(b"", final=True))
    else:
        for i, seq in enumerate(out):
            if len(out) > 1:
                print(f"--- sample {i}")
            print(enc.decode(seq))
    if args.stats:
        n = sum(len(s) - len(p) for s, p in zip(out, prompts))
        print(f"stats: {n} tokens in {wall:.2f} s ({n / max(wall, 1e-9):.1f} tokens/s, batch {len(out)}); "
              f"decoding state {info['state_bytes'] / len(out) / 2**10:.1f} KiB per sequence at position "
              f"{info['position']}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from semsim.artifact import export_artifact

    if not 0 < args.percentile <= 100:
        raise SemsimError(f"--percentile must lie in (0, 100], got {args.percentile}")
    model, run, _ = _load(args.checkpoint, args)
    res = export_artifact(model.float(), run, args.artifact, percentile=args.percentile)
    print(json.dumps(res, indent=2))
    if res["artifact_bytes"] > res["limit_bytes"]:
        print(f"note: {res['artifact_bytes']:,} bytes is over the challenge's {res['limit_bytes']:,}", file=sys.stderr)
    return 0


def cmd_data_prepare(args) -> int:
    from semsim.config import DataConfig
    from semsim.data import prepare_corpus

    cfg = DataConfig(corpus=args.corpus, train_token_cap=args.train_token_cap, val_fraction=args.val_fraction,
                     tokenizer=args.tokenizer)
    from semsim.validation import check_data_config

    check_data_config(cfg)
    cfg.data_dir, cfg.cache_dir = args.data_dir, args.cache_dir
    corpus = prepare_corpus(cfg, force=args.force)
    print(json.dumps({"root": str(corpus.root), **corpus.manifest}, indent=2))
    return 0


def cmd_diagnose(args) -> int:
    from semsim.config import DataConfig
    from semsim.data import gpt2_tokenizer, prepare_corpus, resolve_data_dir, validation_windows
    from semsim.diagnostics.runner import Options, Session
    from semsim.diagnostics.trajectories import HFCausalLM, load_subject
    from semsim.training.trainer import resolve_device

    device = resolve_device(args.device)
    model = load_subject(args.subject, device=device)
    if args.name == "causal":  # needs no data
        from semsim.diagnostics import causal_probe

        res = causal_probe(model, seq_len=args.seq_len)
        print(json.dumps(res, indent=2))
        return 0 if res["passed"] else 1
    data = DataConfig(corpus=args.data, data_dir=args.data_dir, cache_dir=args.cache_dir)
    corpus = prepare_corpus(data, log=lambda m: print(m, file=sys.stderr))
    enc = gpt2_tokenizer(str(resolve_data_dir(data)))
    T = min(args.seq_len, model.block_size)
    windows = validation_windows(corpus.dev, T, (args.seqs + 1) * T + 1)
    decode = enc.decode
    if isinstance(model, HFCausalLM) and args.hf_tokenizer:
        import numpy as np
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(args.subject, local_files_only=True)
        ids = tok(enc.decode(corpus.dev[: 4 * (args.seqs + 1) * T].tolist()))["input_ids"]
        windows = validation_windows(np.asarray(ids), T)
        decode = tok.decode
    opts = Options(n_seqs=args.seqs, separator_steps=args.steps, fit_steps=args.steps, progress=not args.quiet,
                   metrics=_run_log(Path(args.subject)))
    session = Session(model, windows[:, :-1], Path(args.out), opts, decode=decode)
    if args.name == "all":
        res = session.run_all(title=str(args.subject))
        print(f"report: {Path(args.out) / 'report.md'}")
    else:
        res = session.run(args.name)
    print(json.dumps(_summary(res), indent=2))
    return 0


def _run_log(subject: Path) -> str | None:
    """The training log of a run folder, or of the run a checkpoint folder sits in."""
    for folder in (subject, subject.parent):
        if (folder / "metrics.jsonl").is_file():
            return str(folder / "metrics.jsonl")
    return None


def _summary(res: dict) -> dict:
    """The headline numbers of a diagnostics result (long per-item lists left to the JSON files)."""
    keep = {}
    for k, v in res.items():
        if isinstance(v, dict):
            keep[k] = _summary(v)
        elif not isinstance(v, list) or len(v) <= 16:
            keep[k] = v
    return keep


# ------------------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="semsim", description="physics-inspired language models")
    sub = p.add_subparsers(dest="command", required=True)

    pr = sub.add_parser("presets", help="list named presets")
    pr.add_argument("--params", action="store_true", help="also the exact parameter count beside the published one")
    pr.set_defaults(fn=cmd_presets)

    t = sub.add_parser("train", help="train a model", description="train a model; extra arguments "
                       "are overrides such as train.lr=3e-4 model.n_layer=4 data.corpus=tinystories")
    t.add_argument("--preset", help="named preset (default: demo)")
    t.add_argument("--config", help="YAML/JSON run config")
    t.add_argument("--out", default="runs/latest", help="run folder (metrics, checkpoint, plots)")
    t.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    t.add_argument("--force", action="store_true", help="replace a run already in --out")
    t.add_argument("--nproc", type=int, help="train on N processes (GPUs) of this machine through torchrun")
    t.add_argument("--time-budget", type=float, help="wall-clock seconds; the LR schedule spans it")
    t.add_argument("--seeds", help="train once per seed (e.g. 0,1,2) into --out/seed<N>; mean ± std of the "
                   "test results in --out/seeds.json")
    _add_data_flags(t)
    t.add_argument("overrides", nargs="*", help="section.field=value")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("eval", help="loss/perplexity of a checkpoint on a held-out slice (default: test)")
    e.add_argument("checkpoint", help="checkpoint folder, or with --artifact an artifact file")
    e.add_argument("--artifact", action="store_true", help="CHECKPOINT is an int8 + zlib artifact (semsim export)")
    e.add_argument("--split", default="test", choices=["test", "dev", "heldout", "train"],
                   help="test (default; never read by model selection), dev (read by validation and "
                   "keep_best), heldout (both), train")
    e.add_argument("--corpus", help="corpus to evaluate on (default: the one it was trained on)")
    e.add_argument("--tokens", type=_count, help="size of the validation slice")
    e.add_argument("--batch-size", type=_count, default=16)
    e.add_argument("--device", default="auto")
    _add_data_flags(e)
    e.set_defaults(fn=cmd_eval)

    x = sub.add_parser("export", help="write a checkpoint as an int8 + zlib artifact and print its size")
    x.add_argument("checkpoint")
    x.add_argument("--artifact", required=True, help="file to write")
    x.add_argument("--percentile", type=float, default=99.99, help="per-row clipping percentile of |w|")
    x.add_argument("--device", default="cpu")
    _add_data_flags(x)
    x.set_defaults(fn=cmd_export)

    g = sub.add_parser("generate", help="sample text from a checkpoint")
    g.add_argument("checkpoint")
    g.add_argument("--prompt", action="append", help="prompt text; repeat for a batch (default: a newline)")
    g.add_argument("--max-new-tokens", type=_count, default=100)
    g.add_argument("--temperature", type=float, default=0.8)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--stats", action="store_true", help="print tokens/s and decoding-state memory to stderr")
    g.add_argument("--no-stream", action="store_true", help="print the text at the end, not token by token")
    g.add_argument("--device", default="auto")
    _add_data_flags(g)
    g.set_defaults(fn=cmd_generate)

    d = sub.add_parser("data", help="corpus preparation")
    dsub = d.add_subparsers(dest="data_command", required=True)
    dp = dsub.add_parser("prepare", help="tokenise a corpus into cached uint16 files")
    dp.add_argument("corpus", nargs="?", default="tinyshakespeare")
    dp.add_argument("--train-token-cap", type=_count)
    dp.add_argument("--val-fraction", type=_fraction, default=0.1)
    dp.add_argument("--force", action="store_true", help="rebuild even if cached")
    dp.add_argument("--tokenizer", default="gpt2", help="gpt2 | bpe1024 (fitted to the training text only)")
    _add_data_flags(dp)
    dp.set_defaults(fn=cmd_data_prepare)

    dg = sub.add_parser("diagnose", help="measurements of hidden-state dynamics (semsim or HF models)")
    dg.add_argument("name", help="causal | separator | stp | fit-potential | jacobian-symmetry | energy | "
                    "attractors | landscape | coverage | energy-trend | langevin (sphere-ebm) | all")
    dg.add_argument("subject", help="semsim run/checkpoint folder, preset name, or local Hugging Face model folder")
    dg.add_argument("--data", default="tinyshakespeare", help="corpus whose validation slice is used")
    dg.add_argument("--out", default="runs/diagnostics", help="folder for JSON, PNG and report.md")
    dg.add_argument("--seqs", type=_count, default=32, help="validation sequences to trace")
    dg.add_argument("--seq-len", type=_count, default=128)
    dg.add_argument("--steps", type=_count, default=1500, help="optimisation steps of the fits")
    dg.add_argument("--hf-tokenizer", action="store_true", help="re-tokenise with the HF model's own tokenizer")
    dg.add_argument("--quiet", action="store_true")
    dg.add_argument("--device", default="auto")
    _add_data_flags(dg)
    dg.set_defaults(fn=cmd_diagnose)
    return p


def main(argv: list[str] | None = None) -> int:
    from semsim.runtime import keep_freed_memory

    from semsim.training.trainer import Interrupted

    try:
        args = build_parser().parse_args(argv)
        args.argv = argv  # what --nproc re-launches (None: this process's own command line)
    except _UsageError as e:
        print(f"semsim: error: {str(e).removeprefix('semsim: ')}", file=sys.stderr)
        return 2
    keep_freed_memory()
    try:
        return args.fn(args)
    except Interrupted as e:  # Ctrl-C during training: the checkpoint is saved, say how to go on
        print(f"semsim: {e}", file=sys.stderr)
        return 130
    except SemsimError as e:
        print(f"semsim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("semsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
