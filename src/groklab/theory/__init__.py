"""Theory: the effective theory of representation learning (Liu et al. 2022).

>>> from groklab import theory
>>> sweep = theory.lambda3_vs_fraction(p=10, fractions=[0.3, 0.5, 0.7], n_splits=20)
>>> theory.critical_fraction_of(sweep)
"""

from groklab.theory.effective import (
    ZERO_TOL,
    Flow,
    Lambda3Sweep,
    critical_fraction,
    critical_fraction_of,
    effective_loss,
    gradient_flow,
    grokking_rate,
    hessian_eigenvalues,
    lambda3_vs_fraction,
    linearity,
    parallelograms,
    parallelograms_of_task,
    quadratic_form,
)

__all__ = [
    "ZERO_TOL",
    "Flow",
    "Lambda3Sweep",
    "critical_fraction",
    "critical_fraction_of",
    "effective_loss",
    "gradient_flow",
    "grokking_rate",
    "hessian_eigenvalues",
    "lambda3_vs_fraction",
    "linearity",
    "parallelograms",
    "parallelograms_of_task",
    "quadratic_form",
]
