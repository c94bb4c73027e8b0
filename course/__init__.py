"""The instructor's side of the course: build the Module 07 notebook from its lesson and the
reference code, release it to students without solutions, and grade submissions.

* ``course.paths``: where the lesson, the nbgrader course and its generated files live.
* ``course.build``: lesson text + ``tinytorch/core/training.py`` -> the nbgrader source notebook
  and the grading table (``python -m course.build``; ``--check`` verifies they are in sync).
* ``course.solutions``: find and strip ``### BEGIN SOLUTION`` regions, scan files for solutions.
* ``course.release``: stage the student's tinytorch and checks, run nbgrader, scan the release.
* ``course.workspace``: the student's working copy of the release (``make lab``), never
  overwritten.
* ``course.sandbox``: run student code with only what it needs (bubblewrap, namespaces, limits).
* ``course.observer``: what runs inside the sandbox: the student's cells, then each check's
  observation, as JSON lines.
* ``course.trusted``: the trust model, and grading outside the sandbox (judge every check on
  its record, visible and freshly drawn seeds, a class in parallel).
* ``course.grade``: grade notebooks and print JSON (``make grade``).
* ``course.cluster``: grade a class on a Dask cluster's workers (``--cluster``), the same sandbox
  and judging; ``course.slots``: sandbox slots unique on a host.
* ``course.cache``: every decided report kept at once (a rerun grades only what is new);
  ``course.progress``: progress bars and counted lines of the long commands.
* ``course.nbgrader_trusted``: nbgrader's autograde and feedback carrying the trusted outcomes.
* ``course.feedback``: the feedback page a student reads (named checks, wrapped messages).
* ``course.student_env``: what a student environment installs (a wheel without solutions, the
  Jupyter stack, the students' Jupyter configuration) and ``make lab``'s ``.venv-student``.
* ``course.complete``: a student's finished notebook written into their own tinytorch
  (``make complete``), after every check passes.
* ``course.config``: the nbgrader settings (notebooks/nbgrader_config.py, loaded as nbgrader
  loads them) and the gradebook's ``db_url``.
* ``course.validate``, ``course.autograde``, ``course.binder``: validate, autograde a class, build
  the Binder image.
"""
