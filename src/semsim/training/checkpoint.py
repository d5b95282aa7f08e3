"""The one checkpoint format: a folder of safetensors + JSON, never a pickle.

    <ckpt>/
        model.safetensors     weights (and persistent buffers such as the mass table)
        config.json           the full RunConfig (model family + fields, train, data)
        trainer_state.json    step, tokens seen, optimiser param groups, metrics   [training only]
        trainer_state.safetensors  optimiser moments and RNG states              [training only]

Folders are written beside the target and renamed into place, so a run killed mid-save keeps
its previous checkpoint intact (:func:`recover` finishes or undoes a publish cut short).

``config.json`` carries ``format``: the checkpoint layout's version (:data:`FORMAT`). Checkpoints
without it are format 0. Older formats are upgraded on load (:func:`_upgrade`); a newer format is
refused with what to do.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model as st_load_model, save_file, save_model as st_save_model

from semsim.config import RunConfig
from semsim.errors import SemsimError


FORMAT = 2  # version of this folder layout, written into config.json


def _upgrade(d: dict, version: int) -> dict:
    """A config of an older format, in this format's terms. The weights need no change.

    Format 2: ``model.depth`` of an MLP potential counts *hidden* layers, as published; formats 0–1
    counted linear layers, one more (their depth 3 is today's depth 2: the same tensors). A hybrid's
    ``n_attn_layers`` + ``layout`` became its layer ``schedule`` (attn-first: A…AS…S)."""
    model = d.get("model")
    if version < 2 and isinstance(model, dict):
        if isinstance(model.get("depth"), int):
            model["depth"] -= 1
        if model.get("family") == "hybrid" and "n_attn_layers" in model:
            a, s = "A" * model.pop("n_attn_layers"), "S" * model.get("n_layer", 4)
            model["schedule"] = a + s if model.pop("layout", "attn-first") == "attn-first" else s + a
    return d


def _write_model(folder: Path, model: torch.nn.Module, run_config: RunConfig | None) -> None:
    if run_config is None:
        run_config = RunConfig(model=model.config)
    st_save_model(model, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"format": FORMAT, **run_config.to_dict()}, indent=2))


def _publish(tmp: Path, final: Path) -> None:
    """tmp → final, keeping the previous final as final.old until the new one is in place."""
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def recover(final: Path) -> None:
    """Repair what a kill inside :func:`_publish` or a save can leave: a missing ``final`` with its
    previous version in ``final.old`` (restored), and stale ``.tmp`` / ``.old`` folders (removed)."""
    old, tmp = final.with_name(final.name + ".old"), final.with_name(final.name + ".tmp")
    if not final.exists() and old.is_dir():
        old.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)  # never published: the save it belonged to did not finish


def _fresh_tmp(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def save_model(path: str | Path, model: torch.nn.Module, run_config: RunConfig | None = None) -> None:
    path = Path(path)
    tmp = _fresh_tmp(path)
    _write_model(tmp, model, run_config)
    _publish(tmp, path)


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    run_config: RunConfig,
    optimizer: torch.optim.Optimizer,
    state: dict,
    ema: torch.nn.Module | None = None,
) -> None:
    """Everything exact resume needs: weights, optimiser, RNG, the weights' EMA (an ``AveragedModel``, if
    kept) and the trainer's own counters."""
    path = Path(path)
    tmp = _fresh_tmp(path)
    _write_model(tmp, model, run_config)
    opt = optimizer.state_dict()
    tensors = {
        f"opt.{pid}.{k}": v.detach().cpu().contiguous()
        for pid, st in opt["state"].items()
        for k, v in st.items()
    }
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    save_file(tensors, str(tmp / "trainer_state.safetensors"))
    # plain numbers, and not capturable: a CUDA-graphed run's optimiser (lr a device tensor) resumes
    # anywhere, and a graphed trainer turns both back on (Trainer._graph_step)
    groups = [{k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in g.items()} | {"capturable": False}
              for g in opt["param_groups"]]
    meta = {**state, "param_groups": groups}
    (tmp / "trainer_state.json").write_text(json.dumps(meta, indent=2))
    _publish(tmp, path)


def _read_config(folder: Path) -> RunConfig:
    try:
        d = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise SemsimError(f"checkpoint {folder} has no readable config.json ({e.__class__.__name__})") from None
    version = d.get("format", 0) if isinstance(d, dict) else 0
    if not isinstance(version, int) or version > FORMAT:
        raise SemsimError(
            f"checkpoint {folder} has format {version!r}, newer than this semsim reads ({FORMAT}); "
            "upgrade semsim (pip install -U semsim) to load it"
        )
    return RunConfig.from_dict(_upgrade(d, version))


def _check_tensors(folder: Path, model: torch.nn.Module) -> None:
    """Refuse a weights file whose tensors differ from the config's model, naming the first one."""
    expected = model.state_dict()
    path = folder / "model.safetensors"
    try:
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                if name not in expected:
                    continue  # reported with the other unexpected names below
                got = f.get_slice(name)
                shape, dtype = tuple(got.get_shape()), got.get_dtype()
                want = expected[name]
                want_dtype = str(want.dtype).removeprefix("torch.")
                if shape != tuple(want.shape) or _dtype_name(dtype) != want_dtype:
                    raise SemsimError(
                        f"checkpoint {folder} does not match its config: tensor {name!r} is "
                        f"{_dtype_name(dtype)}{list(shape)}, the config's model needs {want_dtype}{list(want.shape)}"
                    )
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise SemsimError(f"checkpoint {folder} is corrupt: {str(e).splitlines()[0][:200]}") from None


def _dtype_name(safetensors_dtype: str) -> str:
    return {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "I64": "int64",
            "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}.get(safetensors_dtype,
                                                                                          safetensors_dtype)


def load_model(path_or_preset: str | Path, device: str | torch.device = "cpu"):
    """(model, run_config) from a checkpoint folder (or a run folder holding one), or a fresh preset model."""
    from semsim.models import build_model
    from semsim.presets import get_preset, preset_names

    folder = Path(path_or_preset)
    if (folder / "checkpoint" / "config.json").is_file():  # a run folder: use its checkpoint
        folder = folder / "checkpoint"
    if not folder.exists():
        if str(path_or_preset) in preset_names():  # a fresh model, built as the trainer would build it
            cfg = get_preset(str(path_or_preset))
            from semsim.data.corpus import model_context

            # a logfreq mass takes its table from the preset's corpus
            return build_model(cfg.model, **model_context(cfg.model, cfg.data)).to(device), cfg
        raise SemsimError(f"no checkpoint folder or preset named {str(path_or_preset)!r}")
    if not folder.is_dir() or not (folder / "model.safetensors").is_file():
        raise SemsimError(f"{folder} is not a semsim checkpoint (needs model.safetensors + config.json)")
    cfg = _read_config(folder)
    model = build_model(cfg.model, from_weights=True)
    _check_tensors(folder, model)
    try:
        missing, unexpected = st_load_model(model, str(folder / "model.safetensors"), strict=False, device="cpu")
    except (SafetensorError, OSError, RuntimeError, ValueError) as e:
        raise SemsimError(f"checkpoint {folder} is corrupt: {str(e).splitlines()[0][:200]}") from None
    if missing or unexpected:
        raise SemsimError(
            f"checkpoint {folder} does not match its config: missing {list(missing)[:5]}, "
            f"unexpected {list(unexpected)[:5]}"
        )
    return model.to(device), cfg


def load_training_state(path: str | Path, optimizer: torch.optim.Optimizer, ema: torch.nn.Module | None = None) -> dict:
    """Restore optimiser moments, the weights' EMA and RNG states in place; return the trainer counters."""
    folder = Path(path)
    try:
        meta = json.loads((folder / "trainer_state.json").read_text())
        tensors = load_file(str(folder / "trainer_state.safetensors"))
    except (OSError, ValueError, SafetensorError) as e:
        raise SemsimError(f"checkpoint {folder} has no readable trainer state ({e.__class__.__name__})") from None
    state: dict[int, dict] = {}
    for key, t in tensors.items():
        if key.startswith("opt."):
            _, pid, name = key.split(".", 2)
            state.setdefault(int(pid), {})[name] = t
    opt_sd = {"state": state, "param_groups": meta.pop("param_groups")}
    try:
        optimizer.load_state_dict(opt_sd)
    except (ValueError, KeyError) as e:
        raise SemsimError(f"optimiser state in {folder} does not fit this model ({e})") from None
    if ema is not None:
        saved = {k.removeprefix("ema."): t for k, t in tensors.items() if k.startswith("ema.")}
        if not saved:
            raise SemsimError(f"checkpoint {folder} holds no weight EMA but train.ema is set; resume with train.ema=0")
        ema.load_state_dict(saved)
    torch.set_rng_state(tensors["rng.cpu"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(tensors["rng.cuda"]))
    return meta
