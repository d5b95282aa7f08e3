"""semsim: physics-inspired language models (Semantic Simulation) next to a GPT baseline."""

from semsim.config import DataConfig, RunConfig, TrainConfig
from semsim.errors import SemsimError
from semsim.models import LanguageModel, LMOutput, build_model
from semsim.models.gpt import GPT, GPTConfig
from semsim.models.splm import SPLM, SPLMConfig
from semsim.presets import get_preset, preset_names

__version__ = "0.1.0"

__all__ = [
    "GPT",
    "SPLM",
    "DataConfig",
    "GPTConfig",
    "LMOutput",
    "LanguageModel",
    "RunConfig",
    "SPLMConfig",
    "SemsimError",
    "TrainConfig",
    "build_model",
    "get_preset",
    "preset_names",
]
