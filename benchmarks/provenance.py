"""What every benchmark result records about where it came from: GPU, driver/CUDA, torch, triton,
date, commit and the command line.

The commit is taken from ``$SEMSIM_COMMIT`` when the caller sets it (a copied tree's ``.git`` may
lag behind the code that runs), else from ``git rev-parse``; ``dirty`` says whether tracked files
differed from it.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import shlex
import subprocess
import sys

import torch


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def command() -> str:
    """This process's command line, with files named by their name only: the folders a result was written
    to (or an earlier module version read from) belong to the machine that ran it, not to the result."""
    args = [os.path.basename(a) if "/" in a and "=" not in a and not a.startswith("-") else a for a in sys.argv]
    args = [re.sub(r"swap=[^,@\s]*/", "swap=", a) for a in args]  # speed.py's earlier-module option
    return " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable), *args])


def provenance() -> dict:
    cuda = torch.cuda.is_available()
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    driver = None
    if cuda:
        try:
            driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                    capture_output=True, text=True, timeout=10).stdout.split("\n")[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    cpu = None
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), None)
    except OSError:
        pass
    commit = os.environ.get("SEMSIM_COMMIT") or _git("rev-parse", "--short=7", "HEAD") or None
    return {
        "gpu": torch.cuda.get_device_name() if cuda else "cpu",
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "driver": driver,
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "triton": triton_version,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")) if not os.environ.get("SEMSIM_COMMIT") else None,
        "command": command(),
    }


def random_model(model_cfg):
    """A random-weight model for timing. A ``logfreq`` mass takes its surprisal table from the Tiny
    Shakespeare copy shipped with semsim (the full-size presets' TinyStories need not be present)."""
    from semsim.config import DataConfig
    from semsim.data.corpus import model_context
    from semsim.models import build_model

    return build_model(model_cfg, **model_context(model_cfg, DataConfig(corpus="tinyshakespeare")))
