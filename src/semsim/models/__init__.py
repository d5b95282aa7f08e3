"""Model registry: every family registers (config dataclass, model class) under a name.

The trainer, evaluator, checkpoints and CLI only ever go through :func:`build_model`,
so adding a family is adding one file that calls :func:`register`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from semsim.errors import SemsimError

_REGISTRY: dict[str, tuple[type, type]] = {}


def register(family: str, config_cls: type) -> Callable[[type], type]:
    def deco(model_cls: type) -> type:
        _REGISTRY[family] = (config_cls, model_cls)
        model_cls.family = family
        return model_cls

    return deco


def families() -> list[str]:
    return sorted(_REGISTRY)


def config_class(family: str) -> type:
    if family not in _REGISTRY:
        raise SemsimError(f"unknown model family {family!r}; known: {', '.join(families())}")
    return _REGISTRY[family][0]


def family_of(cfg: Any) -> str:
    for fam, (ccls, _) in _REGISTRY.items():
        if type(cfg) is ccls:
            return fam
    raise SemsimError(f"{type(cfg).__name__} is not a registered model config")


def build_model(cfg: Any, **context):
    """Instantiate the model for a config. ``context`` carries corpus facts (e.g. ``surprisal``)."""
    if not dataclasses.is_dataclass(cfg):
        raise SemsimError("model config must be a dataclass")
    from semsim.validation import check_model_config

    check_model_config(cfg)
    try:
        return _REGISTRY[family_of(cfg)][1](cfg, **context)
    except ValueError as e:  # a family's own refusal (unknown channel, potential, mass, ...)
        raise SemsimError(f"cannot build a {family_of(cfg)} model from this config: {e}") from None
    except (RuntimeError, MemoryError) as e:  # sizes too large to allocate
        first = str(e).splitlines()[0][:160] if str(e) else type(e).__name__
        raise SemsimError(f"cannot build a {family_of(cfg)} model of this size: {first}") from None


# Importing the families registers them.
from semsim.models import fock, gpt, hybrid, manifold_lm, parflm, sphere_ebm, splm  # noqa: E402,F401
from semsim.models.base import LanguageModel, LMOutput  # noqa: E402

__all__ = ["LMOutput", "LanguageModel", "build_model", "config_class", "families", "family_of", "register"]
