"""Particle mechanics of the SPLM: the damped Euler integrator, token masses, energy bookkeeping."""

from semsim.physics.energy import attention_energy, kinetic, stack_layers, step_energy
from semsim.physics.integrator import StepResult, damped_euler_step
from semsim.physics.mass import TokenMass

__all__ = ["StepResult", "TokenMass", "attention_energy", "damped_euler_step", "kinetic", "stack_layers", "step_energy"]
