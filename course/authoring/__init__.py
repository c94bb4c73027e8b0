"""Authoring: the lesson and ``tinytorch/core/training.py`` become the nbgrader source notebook
(``build``), the assignment is released to students without solutions and scanned
(``release``), validated both ways (``validate``), and built into a Binder image (``binder``)."""
