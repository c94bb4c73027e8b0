"""The course around Module 07, in rooms named for what each serves.

* ``course.assignment``: what every room agrees on: where the course's files live, the
  assignment's graded cells and solution markers, the packages a student receives, nbgrader's
  settings.
* ``course.authoring``: the lesson and the reference become the nbgrader notebook; the release
  to students, its validation, the Binder image.
* ``course.student``: the student's side: their environment (``make lab``), their working copy,
  their finished notebook made into their library (``make complete``).
* ``course.grading``: trusted grading: the sandbox, what runs inside it, judging each check
  outside it, the limits, the cache of decided reports, and where a class runs (this machine's
  pool or a Dask cluster). ``python -m course.grading.grade`` grades files.
* ``course.classroom``: nbgrader's class pipeline: autograde, feedback pages, hand grades,
  tidy-ups, and a JupyterHub for a class.

The rule: arrows between rooms point one way. ``assignment`` uses no room; ``grading`` uses only
``assignment`` (what is graded never depends on how a course is authored or run); ``authoring``
uses ``assignment``; ``student`` uses ``authoring`` and ``assignment``; ``classroom`` may use
every room. ``python -m course.rooms`` draws the graph and fails on an arrow against the rule.

Packages here import nothing when imported: a room's commands that need only the standard
library (``course.student.environment stack``, ``course.classroom.clean``,
``course.classroom.in_use``) run on any python3.
"""
