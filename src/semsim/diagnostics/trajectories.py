"""Hidden-state trajectories h_0 … h_L of every token, from semsim models or HF causal LMs.

For a transformer, h_ℓ is the residual stream after block ℓ (h_0: embeddings); for an SPLM, h_ℓ
is the integrator's state after step ℓ, with its velocity v_ℓ and mass m available.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from semsim.errors import SemsimError
from semsim.models.base import LanguageModel


@dataclass
class Trajectories:
    h: torch.Tensor  # (N tokens, L+1, d), float32 on CPU
    v: torch.Tensor | None = None  # SPLM velocities, same shape
    m: torch.Tensor | None = None  # SPLM masses, (N,)
    seq_len: int = 0  # tokens per sequence (N = n_seq · seq_len, sequence-major)

    @property
    def n_layers(self) -> int:
        return self.h.shape[1] - 1

    def split(self, frac: float = 0.5) -> tuple["Trajectories", "Trajectories"]:
        """Train / held-out split by whole sequences."""
        n_seq = self.h.shape[0] // self.seq_len
        cut = max(1, int(n_seq * frac)) * self.seq_len

        def part(t, sl):
            return None if t is None else t[sl]

        a, b = slice(0, cut), slice(cut, None)
        return (Trajectories(self.h[a], part(self.v, a), part(self.m, a), self.seq_len),
                Trajectories(self.h[b], part(self.v, b), part(self.m, b), self.seq_len))


class HFCausalLM(LanguageModel):
    """Adapter: any ``transformers`` causal LM as a semsim LanguageModel (embed / forward_embeddings)."""

    family = "hf"

    def __init__(self, hf_model):
        super().__init__()
        self.hf = hf_model
        cfg = hf_model.config
        self.config = cfg
        if not hasattr(cfg, "block_size"):
            cfg.block_size = getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", 1024)

    def embed(self, idx):
        return self.hf.get_input_embeddings()(idx)

    def forward_embeddings(self, x, idx, return_extras=False):
        out = self.hf(inputs_embeds=x, output_hidden_states=return_extras)
        extras = {"hidden": list(out.hidden_states)} if return_extras else {}
        return out.logits, None, extras


def load_subject(path_or_name: str, device: str | torch.device = "cpu") -> LanguageModel:
    """A semsim checkpoint / preset, or a local Hugging Face causal-LM folder."""
    p = Path(path_or_name)
    if _is_hf(p):  # HF configs carry "model_type"; semsim's carry a "model" section
        try:
            from transformers import AutoModelForCausalLM
        except ImportError:
            raise SemsimError("reading a Hugging Face model needs `pip install transformers`") from None
        try:
            hf = AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True)
        except (OSError, ValueError) as e:
            raise SemsimError(f"could not load a Hugging Face model from {p}: {str(e).splitlines()[0]}") from None
        return HFCausalLM(hf.float().eval()).to(device)
    from semsim.training import load_model

    return load_model(path_or_name, device=device)[0].eval()


def _is_hf(p: Path) -> bool:
    import json

    try:
        return "model_type" in json.loads((p / "config.json").read_text())
    except (OSError, ValueError):
        return False


@torch.no_grad()
def collect(model: LanguageModel, windows: torch.Tensor, max_seqs: int = 32, batch_size: int = 8) -> Trajectories:
    """Run ``max_seqs`` token windows (n, T) through the model and stack every token's trajectory."""
    device = next(model.parameters()).device
    model.eval()
    hs, vs, ms = [], [], []
    windows = windows[:max_seqs]
    T = windows.shape[1]
    for i in range(0, len(windows), batch_size):
        idx = windows[i : i + batch_size].to(device)
        ex = model(idx, return_extras=True).extras
        if "hidden" not in ex:
            raise SemsimError(f"{type(model).__name__} does not expose hidden states")
        hs.append(torch.stack(ex["hidden"], 2).flatten(0, 1).float().cpu())
        if "velocity" in ex:
            vs.append(torch.stack(ex["velocity"], 2).flatten(0, 1).float().cpu())
            ms.append(ex["mass"].reshape(-1).float().cpu())
    return Trajectories(torch.cat(hs), torch.cat(vs) if vs else None, torch.cat(ms) if ms else None, T)
