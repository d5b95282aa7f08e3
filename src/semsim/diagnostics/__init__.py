"""Measurements of hidden-state dynamics: causality, energy, landscape, attractors."""

from semsim.diagnostics.causal import causal_probe
from semsim.diagnostics.landscape import landscape_stats

__all__ = ["causal_probe", "landscape_stats"]
