"""The instructor's side of the course: build the Module 07 notebook from its lesson and the
reference code, release it to students without solutions, and grade submissions.

* ``course.paths``: where the lesson, the nbgrader course and its generated files live.
* ``course.build``: lesson text + ``tinytorch/core/training.py`` -> the nbgrader source notebook
  and the grading table (``python -m course.build``; ``--check`` verifies they are in sync).
* ``course.solutions``: find and strip ``### BEGIN SOLUTION`` regions, scan files for solutions.
* ``course.release``: stage the student's tinytorch and checks, run nbgrader, scan the release.
* ``course.grade``: grade one submitted notebook with nbgrader and print JSON.
* ``course.config``: the nbgrader settings of notebooks/nbgrader_config.py.
* ``course.validate``, ``course.autograde``, ``course.binder``: validate, autograde a class, build
  the Binder image.
"""
