"""Colours shared by the matplotlib figures and the HTML reports (no plotting library here)."""

PHASE_COLORS = ("#2ca02c", "#1f77b4", "#ff7f0e", "#d62728",  # as in Liu et al.'s diagrams
                "#d9d9d9", "#6e6e6e")  # undetermined (evaluations too sparse), tie (no majority)
