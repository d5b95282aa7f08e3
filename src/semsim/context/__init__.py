"""Causal context channels ξ (cumulative mean, multi-EMA, HiPPO-LegT, S4D) and their scans."""

from semsim.context.channels import S4D, CumulativeMean, HiPPOLegT, MultiEMA, make_channel
from semsim.context.scan import diag_scan, matrix_scan

__all__ = ["CumulativeMean", "HiPPOLegT", "MultiEMA", "S4D", "diag_scan", "make_channel", "matrix_scan"]
