"""Training: the one loop (``loop.py``: ``train``, ``resume``), losses, the ensemble
optimizer, the methods' registry, schedules. Import the modules themselves; this package
file imports none of them, so that ``groklab.resolve`` (above the methods, below the loop)
can read the methods' registry."""
