"""The trainer, its LR schedule and the checkpoint format."""

from semsim.training.checkpoint import load_model, save_checkpoint, save_model
from semsim.training.schedule import lr_multiplier
from semsim.training.trainer import Trainer, TrainResult

__all__ = ["TrainResult", "Trainer", "load_model", "lr_multiplier", "save_checkpoint", "save_model"]
