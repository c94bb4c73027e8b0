"""The course's formgrader: nbgrader's, with the maths offline, the rubric beside each written
answer and every student named.

A Jupyter server extension, loaded by ``make formgrader`` (``course.classroom.formgrader``)
and, on a hub, by the instructor's server once its configuration enables it
(``{"ServerApp": {"jpserver_extensions": {"course.classroom.formgrader_view": true}}}`` in a
``jupyter_server_config.d/*.json`` of its environment). nbgrader's formgrader keeps its
handlers, API and gradebook; this extension replaces two of the objects it reads from the
web application's settings, each nbgrader's documented way of rendering:

- ``nbgrader_exporter``, the nbconvert exporter that renders a submission for grading (a plain
  ``HTMLExporter`` with nbgrader's ``formgrade`` template, whose class no setting chooses),
  becomes ``FormgradeExporter``: the template ``templates/tinytorch-formgrade`` (which extends
  nbgrader's ``formgrade``) loads no MathJax, writes every formula as MathML with the feedback
  page's markdown renderer (``FeedbackExporter.markdown2html``: offline, and student text made
  inert), shows each written answer's rubric from the instructor guide beside it
  (``course.classroom.rubric``), and names the student in the page's bar and title instead of
  "Submission #3", a number that changes when a student is added;
- ``nbgrader_jinja2_env``, the Jinja environment of the formgrader's list pages, looks first in
  ``templates/tinytorch-formgrader-pages`` (each page there extends nbgrader's own, reachable as
  ``nbgrader/<page>``): Manual Grading's list of submissions shows each student's name by
  default (nbgrader hides it behind "Submission #N" until the eye is clicked), and Manage
  Submissions and Manage Students read "alice" for a student named by their id alone
  (``formgrader.name_students``), where nbgrader writes "alice, None".

Why a start hook: jupyter_server loads extensions in alphabetical order, so nbgrader's
formgrader (``nbgrader``) is loaded after this one (``course...``) and would overwrite both
settings; ``_start_jupyter_server_extension`` runs once every extension is loaded, as the
server's event loop starts and before it serves a request. The rubric reaches the grader's
browser only: nothing here writes a file, and a student's feedback page is another exporter
(``FeedbackExporter``), which shows no rubric.
"""

from __future__ import annotations

from html import escape
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from nbconvert.exporters import HTMLExporter
from traitlets import List, Unicode

from course.classroom import feedback, rubric
from course.classroom.formgrader import shown_name

TEMPLATES = feedback.TEMPLATES
#: The submission's page: an nbconvert template extending nbgrader's ``formgrade``.
TEMPLATE = "tinytorch-formgrade"
#: The formgrader's list pages the course changes, each extending nbgrader's.
PAGES = TEMPLATES / "tinytorch-formgrader-pages"
#: nbgrader's templates: the formgrader's pages and the nbconvert template ``formgrade``.
NBGRADER_TEMPLATES = feedback.NBGRADER_TEMPLATES
#: The extension's name, as ``jpserver_extensions`` enables it.
EXTENSION = __name__


def rubric_aside(grade_id: str, found: dict[str, rubric.Section] | None, problem: str | None,
                 render: Any) -> str:
    """The rubric of the written answer ``grade_id`` as HTML, to stand beside the answer: its
    title, points and criteria (``render``: markdown to HTML), or what is missing."""
    section = (found or {}).get(grade_id)
    if section is None:
        why = problem or (f"no rubric section for {grade_id} in {rubric.GUIDE.name} (between "
                          "<!-- BEGIN RUBRIC --> and <!-- END RUBRIC -->)")
        return (f'<aside class="rubric rubric-missing" role="note" '
                f'data-grade-id="{escape(grade_id)}"><div class="rubric-title">Rubric</div>'
                f'<p>{escape(why)}</p></aside>')
    return (f'<aside class="rubric" role="note" data-grade-id="{escape(grade_id)}">'
            f'<div class="rubric-title">Rubric: {escape(section.title)} '
            f'<span class="rubric-points">({section.points} points)</span></div>'
            f'<div class="rubric-criteria">{render(section.text)}</div></aside>')


class FormgradeExporter(HTMLExporter):
    """A submission as the formgrader shows it for grading (see the module's docstring)."""

    # The course's page, whatever the configuration says of HTML exporters (nbgrader sets the
    # template ``formgrade`` for all of them): not configurable, like the feedback page's.
    template_name = Unicode(TEMPLATE)
    extra_template_basedirs = List(Unicode(), [str(TEMPLATES), str(NBGRADER_TEMPLATES)])
    extra_template_paths = List(Unicode(), [str(NBGRADER_TEMPLATES)])

    #: The feedback page's markdown: formulas as MathML, written when the page is made, and
    #: only what ``course.classroom.inert`` allows (a student's answer runs nothing).
    markdown2html = feedback.FeedbackExporter.markdown2html

    def default_filters(self) -> Any:
        yield from super().default_filters()
        yield ("shown_name", shown_name)
        yield ("is_written_answer", feedback.is_written_answer)

    def from_notebook_node(self, nb: Any, resources: dict[str, Any] | None = None,
                           **kw: Any) -> tuple[str, dict[str, Any]]:
        # the guide is read for every page: a rubric edited while grading shows at once
        try:
            found, problem = rubric.sections(), None
        except rubric.RubricError as error:
            found, problem = None, str(error)

        def aside(grade_id: str) -> str:
            return rubric_aside(grade_id, found, problem,
                                lambda text: self.markdown2html({}, text))

        self.register_filter("rubric_aside", aside)
        return super().from_notebook_node(nb, resources, **kw)


def pages_environment() -> Environment:
    """The Jinja environment of the formgrader's pages: the course's pages first, then
    nbgrader's (also as ``nbgrader/<page>``, for the course's pages to extend)."""
    nbgrader_pages = FileSystemLoader(str(NBGRADER_TEMPLATES))
    return Environment(loader=ChoiceLoader([
        FileSystemLoader(str(PAGES)), PrefixLoader({"nbgrader": nbgrader_pages}),
        nbgrader_pages]))


def install(settings: dict[str, Any], log: Any) -> bool:
    """Put the course's exporter and pages in place of nbgrader's in the web application's
    ``settings``; False (and a warning) when nbgrader's formgrader is not loaded."""
    formgrader = settings.get("nbgrader_formgrader")
    if formgrader is None or "nbgrader_exporter" not in settings:
        log.warning("%s: nbgrader's formgrader is not loaded (its server extension is off): "
                    "nothing to show the rubric in", EXTENSION)
        return False
    settings["nbgrader_exporter"] = FormgradeExporter(config=formgrader.config)
    settings["nbgrader_jinja2_env"] = pages_environment()
    log.info("%s: the formgrader shows maths offline, the rubric of %s and students' names",
             EXTENSION, rubric.GUIDE)
    return True


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": EXTENSION}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    serverapp.log.info("%s: waits for nbgrader's formgrader (loaded after this extension)",
                       EXTENSION)


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    install(serverapp.web_app.settings, serverapp.log)

