"""nbgrader settings of the course. Commands run from this folder (the course root); the
Makefile's release/validate/autograde/feedback/export targets do that for you."""

c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "tinytorch-07-training"
# A check that hangs (an endless loop in a student's train_epoch) scores 0 and grading goes on.
c.Execute.timeout = 120
# Restore a test cell a student deleted, so it is graded (and fails) instead of vanishing.
c.OverwriteCells.add_missing_cells = True
# nbgrader's own autograde (`nbgrader autograde`, the formgrader's Autograde button) would run
# each student's notebook in a kernel on the grader's account: it is refused, saying to run
# `make autograde`, which sandboxes the notebook and judges outside it (and sets its own steps),
# before any folder is touched.
c.Autograde.exporter_class = "course.classroom.nbgrader_trusted.KernelRefused"
# `nbgrader generate_feedback` and the formgrader's Generate Feedback write the course's page
# (the checks named, the hidden tests hidden, the maths offline), as `make feedback` does.
c.GenerateFeedback.exporter_class = "course.classroom.feedback.FeedbackExporter"
# `make export` and `nbgrader export` write grades.csv with the automatic and hand-graded points
# apart and the written answers still waiting for a grader (course/classroom/export.py).
c.ExportApp.plugin_class = "course.classroom.export.CourseCsvExport"
