"""Particle mechanics of the SPLM: the damped Euler integrator, token masses, energy bookkeeping."""

from semsim.physics.energy import kinetic, step_energy
from semsim.physics.integrator import StepResult, damped_euler_step
from semsim.physics.mass import TokenMass

__all__ = ["StepResult", "TokenMass", "damped_euler_step", "kinetic", "step_energy"]
