"""Figures are written from metrics.jsonl files (PNG header checked, runs without validation skipped)."""

import json

from semsim.plotting import plot_loss_curve, plot_val_vs_wall


def _metrics(path, val_ppls):
    rows = [{"step": 10 * i, "split": "train", "loss": 5.0 - 0.1 * i} for i in range(5)]
    rows += [{"step": 10 * i, "split": "val", "loss": 4.0, "ppl": p, "elapsed": 2.0 * i} for i, p in enumerate(val_ppls)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_loss_curve_and_wall_clock_comparison(tmp_path):
    a = _metrics(tmp_path / "a.jsonl", [500.0, 120.0, 300.0])
    b = _metrics(tmp_path / "b.jsonl", [])  # no validation rows: left out of the comparison, no error
    for png in (plot_loss_curve(a, tmp_path / "loss.png"),
                plot_val_vs_wall({"a": a, "b": b}, tmp_path / "wall.png", title="t")):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 5_000
