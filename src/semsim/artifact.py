"""A compressed model artifact: per-row int8 weights with percentile clipping, in one zlib stream.

Layout (before compression): ``SEMSIMQ1``, a 4-byte little-endian header length, a JSON header (the run
config, and for each tensor its name, shape, storage and byte range), then the tensors' bytes.

- floating matrices (≥ 2-D, ≥ 4,096 values): each row clipped at the ``percentile`` of its |w|, scaled to
  [−127, 127] and rounded to int8; the per-row scales kept in fp16;
- other floating tensors (norms, biases, scalars): fp16;
- integer tensors (e.g. a token graph's neighbour table): the narrowest integer type that holds them.

The artifact's size, as the small-model challenge counts it, is its compressed bytes plus the bytes of the
code that runs it (:func:`code_bytes`: every .py file of the semsim package, an upper bound).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from semsim.errors import SemsimError

MAGIC = b"SEMSIMQ1"
MIN_QUANTISED = 4096  # smaller tensors stay fp16: their scales would cost more than they save


def quantise_rows(w: torch.Tensor, percentile: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 values, fp16 per-row scales) of a ≥ 2-D float tensor, rows = all but the last dim."""
    rows = w.detach().float().reshape(-1, w.shape[-1])
    clip = torch.quantile(rows.abs(), percentile / 100.0, dim=1, keepdim=True) if percentile < 100 else \
        rows.abs().amax(dim=1, keepdim=True)
    scale = (clip / 127.0).clamp_min(1e-12).half()
    q = torch.round(rows.clamp(-clip, clip) / scale.float()).clamp(-127, 127).to(torch.int8)
    return q, scale


def _int_dtype(t: torch.Tensor) -> np.dtype:
    lo, hi = (int(t.min()), int(t.max())) if t.numel() else (0, 0)
    for dt in (np.int8, np.int16, np.int32):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def export_artifact(model: torch.nn.Module, run_config, path: str | Path, percentile: float = 99.99,
                    level: int = 9) -> dict:
    """Write the artifact; return its sizes."""
    header = {"format": 1, "percentile": percentile, "config": run_config.to_dict(), "tensors": []}
    chunks, offset = [], 0

    def add(array: np.ndarray) -> list[int]:
        nonlocal offset
        b = array.tobytes()
        chunks.append(b)
        offset += len(b)
        return [offset - len(b), len(b)]

    for name, t in model.state_dict().items():
        entry = {"name": name, "shape": list(t.shape)}
        if t.is_floating_point() and t.dim() >= 2 and t.numel() >= MIN_QUANTISED:
            q, scale = quantise_rows(t, percentile)
            entry.update(kind="int8-rows", data=add(q.cpu().numpy()), scale=add(scale.cpu().numpy()))
        elif t.is_floating_point():
            entry.update(kind="fp16", data=add(t.detach().half().cpu().numpy()))
        else:
            dt = _int_dtype(t)
            entry.update(kind=f"int:{dt.name}", torch_dtype=str(t.dtype).removeprefix("torch."),
                         data=add(t.cpu().numpy().astype(dt)))
        header["tensors"].append(entry)
    head = json.dumps(header).encode()
    raw = MAGIC + struct.pack("<I", len(head)) + head + b"".join(chunks)
    blob = zlib.compress(raw, level)
    Path(path).write_bytes(blob)
    code = code_bytes()
    return {"path": str(path), "raw_bytes": len(raw), "compressed_bytes": len(blob), "code_bytes": code,
            "artifact_bytes": len(blob) + code, "limit_bytes": 16_000_000,
            "params": sum(t.numel() for t in model.state_dict().values())}


def load_artifact(path: str | Path, device: str | torch.device = "cpu"):
    """(dequantised model, run config) from an artifact file."""
    from semsim.config import RunConfig
    from semsim.models import build_model

    try:
        raw = zlib.decompress(Path(path).read_bytes())
    except (OSError, zlib.error) as e:
        raise SemsimError(f"{path} is not a readable semsim artifact ({e.__class__.__name__}: {e})") from None
    if not raw.startswith(MAGIC):
        raise SemsimError(f"{path} is not a semsim artifact (no {MAGIC.decode()} header)")
    (n,) = struct.unpack("<I", raw[8:12])
    header = json.loads(raw[12 : 12 + n])
    body = memoryview(raw)[12 + n :]
    run = RunConfig.from_dict(header["config"])
    state = {}
    for e in header["tensors"]:
        a, b = e["data"]
        if e["kind"] == "int8-rows":
            q = torch.from_numpy(np.frombuffer(body[a : a + b], dtype=np.int8).copy()).float()
            s0, s1 = e["scale"]
            scale = torch.from_numpy(np.frombuffer(body[s0 : s0 + s1], dtype=np.float16).copy()).float()
            t = (q.view(-1, e["shape"][-1]) * scale.view(-1, 1)).view(e["shape"])
        elif e["kind"] == "fp16":
            t = torch.from_numpy(np.frombuffer(body[a : a + b], dtype=np.float16).copy()).float().view(e["shape"])
        else:
            dt = np.dtype(e["kind"].split(":", 1)[1])
            t = torch.from_numpy(np.frombuffer(body[a : a + b], dtype=dt).astype(np.int64)).view(e["shape"])
            t = t.to(getattr(torch, e["torch_dtype"]))
        state[e["name"]] = t
    model = build_model(run.model, from_weights=True)
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), run


def code_bytes() -> int:
    """Bytes of every .py file of the installed semsim package: the code an artifact needs to run."""
    root = Path(__file__).resolve().parent
    return sum(p.stat().st_size for p in root.rglob("*.py"))
