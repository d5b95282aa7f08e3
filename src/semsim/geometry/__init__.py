"""Manifolds the models live on: the unit hypersphere's tangent projection, exponential and logarithm maps."""

from semsim.geometry.sphere import exp_map, log_map, project_tangent, transport_along

__all__ = ["exp_map", "log_map", "project_tangent", "transport_along"]
