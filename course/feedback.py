"""The feedback page a student receives: nbgrader's feedback, named and readable, made faster.

``make feedback`` runs nbgrader's ``generate_feedback`` with ``FeedbackExporter`` in place of
its HTML exporter (``course.nbgrader_trusted`` sets it). What changes for the student, in the
template ``course/templates/tinytorch-feedback`` (which extends nbgrader's):

- every graded cell is named by its check and title ("1.2: gradients are cleared before every
  optimizer step") in the list at the top and above the cell, instead of "Test cell" 21 times;
- a check's message wraps at the edge of the page instead of running off it;
- the page names the assignment, never a folder of the grader's; and every message shown is the
  trusted grader's, which names the student's cells (``cell In[3]``), not files on the grader.

What changes for the grader: the templates are compiled once per process, not once per
page; a class's pages are mostly the same given code, so its syntax highlighting is computed
once per process and reused; and the page is not re-parsed afterwards
(nbconvert's HTML exporter re-reads its whole output with BeautifulSoup only to add ``alt``
text to images and ``tabindex`` to cells, about half of a page's time: a feedback page carries
no image output, and the template sets ``tabindex`` itself).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import nbgrader
from jinja2.bccache import Bucket, BytecodeCache
from nbconvert.exporters import HTMLExporter
from nbconvert.exporters.templateexporter import TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from traitlets import default

TEMPLATES = Path(__file__).with_name("templates")
TEMPLATE = "tinytorch-feedback"
_FORMGRADER = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
#: nbgrader's own templates (ours extends its ``feedback/index.html.j2``) and the stylesheet
#: its feedback page inlines.
NBGRADER_TEMPLATES = _FORMGRADER / "templates"
BOOTSTRAP_CSS = _FORMGRADER / "static" / "node_modules" / "bootstrap" / "dist" / "css"


@functools.cache
def graded_titles() -> dict[str, str]:
    """grade_id -> "check: title" for every graded cell of the assignment."""
    from checks.registry import TITLES
    from course.trusted import graded_cells

    return {cell.grade_id: f"{cell.check}: {TITLES.get(cell.check, cell.grade_id)}"
            for cell in graded_cells()}


def graded_title(grade_id: str) -> str:
    """A graded cell's name as the student reads it (its grade_id if it is not the course's)."""
    return graded_titles().get(grade_id, grade_id)


class _SharedHighlight(Highlight2HTML):
    """Pygments highlighting, remembered by source: the given code is the same on every page."""

    _seen: dict[tuple[str, str | None], str] = {}

    def __call__(self, source: str, language: str | None = None,
                 metadata: Any = None) -> str:
        key = (source, language or self.pygments_lexer)
        if key not in self._seen:
            self._seen[key] = super().__call__(source, language, metadata)
        return self._seen[key]


class _CompiledTemplates(BytecodeCache):
    """Jinja's compiled templates, kept in memory for the process. nbgrader makes a new
    exporter (and so a new Jinja environment) for every student, which would parse and compile
    the same ten templates again for each page; Jinja checks each template's source against the
    checksum it was compiled from, so an edited template is compiled anew."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


class FeedbackExporter(HTMLExporter):
    """HTML feedback of Module 07 (see the module's docstring)."""

    def _create_environment(self) -> Any:
        environment = super()._create_environment()
        environment.bytecode_cache = _COMPILED
        return environment

    @default("template_name")
    def _template_name_default(self) -> str:
        return TEMPLATE

    @default("extra_template_basedirs")
    def _extra_template_basedirs_default(self) -> list[str]:
        return [str(TEMPLATES), str(NBGRADER_TEMPLATES)]

    def default_filters(self) -> Any:
        yield from super().default_filters()
        yield ("graded_title", graded_title)

    def from_notebook_node(self, nb: Any, resources: dict[str, Any] | None = None,
                           **kw: Any) -> tuple[str, dict[str, Any]]:
        info = nb.metadata.get("language_info", {})
        lexer = info.get("pygments_lexer", info.get("name", None))
        self.register_filter("highlight_code", _SharedHighlight(pygments_lexer=lexer, parent=self))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)


def configure(settings: Any) -> None:
    """Make nbgrader's ``generate_feedback`` write this course's page."""
    settings.GenerateFeedback.exporter_class = FeedbackExporter
    settings.FeedbackExporter.template_name = TEMPLATE
    settings.FeedbackExporter.extra_template_basedirs = [str(TEMPLATES), str(NBGRADER_TEMPLATES)]
    settings.FeedbackExporter.extra_template_paths = [str(NBGRADER_TEMPLATES), str(BOOTSTRAP_CSS)]
