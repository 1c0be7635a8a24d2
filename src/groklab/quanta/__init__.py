"""The quantization model of neural scaling (Michaud et al. 2023) on multitask sparse parity:
per-subtask emergence (:mod:`.emergence`), power-law scaling fits with bootstrap intervals
(:mod:`.scaling`) and quanta discovery from gradients (:mod:`.qdg`)."""

from groklab.quanta.emergence import emergence, emergence_table, subtask_curves
from groklab.quanta.qdg import angular_affinity, cluster_gradients, per_sample_grads, qdg
from groklab.quanta.scaling import (
    PowerLawFit,
    bootstrap_power_law,
    fit_power_law,
    scaling_points,
    steps_points,
    theory_exponent,
)

__all__ = ["emergence", "emergence_table", "subtask_curves", "angular_affinity", "cluster_gradients",
           "per_sample_grads", "qdg", "PowerLawFit", "bootstrap_power_law", "fit_power_law", "scaling_points",
           "steps_points", "theory_exponent"]
