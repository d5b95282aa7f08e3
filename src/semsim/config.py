"""Typed run configuration: model + training + data, saved as JSON or YAML.

A run is fully described by a :class:`RunConfig`. The model part is any dataclass registered
in :mod:`semsim.models` under a family name; it is serialised with a ``family`` key so that a
checkpoint can be rebuilt without knowing in advance what kind of model it holds.

Command-line overrides use dotted paths: ``train.lr=3e-4 model.n_layer=4 data.corpus=tinystories``.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from semsim.errors import SemsimError


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping. Defaults follow the published SPLM recipe (AdamW, cosine)."""

    steps: int = 1000
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 5e-4
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100
    # cosine: warm-up, cosine to min_lr_ratio at the end. cosine-hold: warm-up, cosine to min_lr_ratio at
    # lr_decay_steps, held there to lr_hold_steps, then linear to 0 at the last step (the graph LM's recipe)
    lr_schedule: str = "cosine"
    lr_decay_steps: int = 3400
    lr_hold_steps: int = 5500
    ema: float = 0.0  # > 0: keep an EMA of the weights with this decay; it is what validation and best/ read
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_interval: int = 200  # steps between validations (0: only at the end)
    eval_interval_s: float = 0.0  # or seconds of wall time between validations (0: off)
    keep_best: bool = False  # also save the model with the best validation (dev) loss to <run>/best
    patience: int = 0  # early stopping: stop after this many validations without a better dev loss (0: off)
    eval_tokens: int = 65536  # size of the fixed validation slice used for every evaluation
    eval_batch_size: int = 16
    log_interval: int = 10
    ckpt_interval: int = 500  # steps between checkpoints (0: only at the end)
    seed: int = 1337
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (bf16 autocast on CUDA, fp32 on CPU) | fp32 | bf16
    compile: bool = False
    compile_scope: str = "whole"  # whole | regional (SPLMs: compile one integration step; faster to build)
    compile_mode: str | None = None  # torch.compile mode, e.g. reduce-overhead (CUDA graphs)
    # Replay the whole training step (eager or compiled) as one CUDA graph (semsim.training.graphed_step). None
    # (auto): on CUDA for families that allow it, on one GPU, with grad_accum 1, unless compile_mode captures its
    # own graphs (reduce-overhead, max-autotune); true insists; false: off.
    cuda_graph: bool | None = None
    causal_probe: bool = True  # run the causal-violation probe before training
    time_budget: float | None = None  # seconds; when set, the LR schedule is laid over wall time
    progress: bool = True


@dataclass
class DataConfig:
    """Which corpus, where its raw files live, and how it is cut."""

    corpus: str = "tinyshakespeare"  # tinyshakespeare | tinystories | path to a .txt file
    data_dir: str | None = None  # raw corpora + tokenizer files; default $SEMSIM_DATA_DIR
    cache_dir: str | None = None  # prepared token files; default $SEMSIM_CACHE_DIR
    train_token_cap: int | None = None  # the published TinyStories runs cap training at 5M tokens
    val_fraction: float = 0.1  # single-file corpora: the last fraction of tokens is held out
    # the held-out tokens' last test_share is the test slice results report; the rest is the dev slice
    # that validation, keep_best and early stopping read (disjoint: selection never sees the test slice)
    test_share: float = 0.5
    val_token_cap: int | None = None  # keep at most this many tokens of each held-out slice
    # gpt2 (tiktoken, 50,257 ids) | bpe1024 (a byte-level BPE fitted to the training text only; held out
    # by characters before fitting, so neither the tokenizer nor anything built on it sees held-out text)
    tokenizer: str = "gpt2"


@dataclass
class RunConfig:
    model: Any  # a registered model config dataclass
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        from semsim.models import family_of

        return {
            "model": {"family": family_of(self.model), **dataclasses.asdict(self.model)},
            "train": dataclasses.asdict(self.train),
            "data": dataclasses.asdict(self.data),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        from semsim.models import config_class

        if not isinstance(d, dict) or "model" not in d:
            raise SemsimError("config must be a mapping with a 'model' section")
        model_d = dict(d["model"])
        family = model_d.pop("family", None)
        if family is None:
            raise SemsimError("config 'model' section needs a 'family' key (e.g. gpt, splm)")
        return cls(
            model=_build(config_class(family), model_d, "model"),
            train=_build(TrainConfig, d.get("train", {}), "train"),
            data=_build(DataConfig, d.get("data", {}), "data"),
        )

    def save(self, path: str | Path) -> None:
        path = Path(path)
        text = (
            yaml.safe_dump(self.to_dict(), sort_keys=False)
            if path.suffix in (".yaml", ".yml")
            else json.dumps(self.to_dict(), indent=2)
        )
        tmp = path.with_name(path.name + ".tmp")  # written whole, then renamed: a kill never leaves half a file
        tmp.write_text(text)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        path = Path(path)
        if not path.is_file():
            raise SemsimError(f"config file not found: {path}")
        try:
            d = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
        except yaml.YAMLError as e:
            raise SemsimError(f"config file {path} is not valid YAML/JSON: {e}") from None
        return cls.from_dict(d)

    def check(self) -> "RunConfig":
        """Refuse values that type-check but cannot run (see :mod:`semsim.validation`)."""
        from semsim.validation import check_data_config, check_model_config, check_train_config

        check_model_config(self.model)
        check_train_config(self.train)
        check_data_config(self.data)
        return self

    # ---------------------------------------------------------------- overrides
    def override(self, assignments: list[str]) -> "RunConfig":
        """Apply ``section.field=value`` assignments; unknown fields are an error."""
        for item in assignments:
            if "=" not in item:
                raise SemsimError(f"override {item!r} is not of the form section.field=value")
            key, raw = item.split("=", 1)
            parts = key.strip().split(".")
            if len(parts) != 2 or parts[0] not in ("model", "train", "data"):
                raise SemsimError(
                    f"override {key!r}: expected model.<field>, train.<field> or data.<field>"
                )
            section = getattr(self, parts[0])
            names = {f.name for f in dataclasses.fields(section)}
            if parts[1] not in names:
                raise SemsimError(
                    f"unknown config field {key!r}; {parts[0]} fields are: {', '.join(sorted(names))}"
                )
            hints = typing.get_type_hints(type(section))
            try:
                parsed = yaml.safe_load(raw)
            except yaml.YAMLError:
                raise SemsimError(f"override {item!r}: the value {raw!r} is not valid YAML") from None
            value = _coerce(parsed, hints[parts[1]], key)
            setattr(section, parts[1], value)
        return self


def _build(cls: type, d: dict, where: str):
    if not isinstance(d, dict):
        raise SemsimError(f"config section '{where}' must be a mapping")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise SemsimError(
            f"unknown config field(s) {', '.join(where + '.' + u for u in unknown)}; "
            f"{where} fields are: {', '.join(sorted(names))}"
        )
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in d.items()})


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a parsed YAML value to a dataclass field type (int, float, tuple, Optional)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except SemsimError as e:
                errors.append(str(e))
        raise SemsimError(errors[0] if errors else f"bad value for {key}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise SemsimError(f"{key} expects a list, got {value!r}")
        (elem, *_) = typing.get_args(tp) or (Any,)
        return tuple(_coerce(v, elem, key) for v in value) if origin is tuple else [
            _coerce(v, elem, key) for v in value
        ]
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise SemsimError(f"{key} expects true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise SemsimError(f"{key} expects an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML reads "5e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise SemsimError(f"{key} expects a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise SemsimError(f"{key} expects a string, got {value!r}")
    return value
