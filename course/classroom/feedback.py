"""The feedback page a student receives: nbgrader's feedback, named and readable, made faster.

``make feedback`` runs nbgrader's ``generate_feedback`` with ``FeedbackExporter`` in place of
its HTML exporter (``course.classroom.nbgrader_trusted`` sets it). What changes for the student, in
the template ``course/classroom/templates/tinytorch-feedback`` (which extends nbgrader's):

- every graded cell is named by its check and title ("1.2: gradients are cleared before every
  optimizer step") in the list at the top and above the cell, instead of "Test cell" 21 times;
- a check's message wraps at the edge of the page instead of running off it;
- the page names the assignment, never a folder of the grader's; and every message shown is the
  trusted grader's, which names the student's cells (``cell In[3]``), not files on the grader;
- a written answer no grader has scored yet says "not graded yet" with its points, not a
  score of 0, and one rewritten after it was graded "to grade again ... (was 2/3 for an earlier
  answer)" (``MarkPendingAnswers`` asks ``course.classroom.manual``'s one rule);
- the page states what was graded: the submission's time, the first characters of the
  SHA-256 of the bytes graded, when, and the answers still waiting for a grader;
- a graded test cell shows as its name, its points and that message, never its source: the
  source holds the hidden tests (``### BEGIN HIDDEN TESTS``, ``run_check(..., seed=...)``), and
  the grade came from data drawn at grading time anyway. ``HideCheckSource`` empties that source
  before the template sees it; the student's answer cells keep theirs;
- the lesson's maths is MathML written when the page is made (``latex2mathml``), which Chromium
  and Firefox render, so the page needs no network (nbgrader's page loads MathJax from a CDN and
  shows raw LaTeX offline). A formula the converter cannot render shows as its LaTeX source in
  a ``<code>`` element;
- each cause a message names carries its code (``likely bug [TT112]: ...``), linked to the
  cause's explanation at the end of the page (``checks.catalog``: what the bug is, what it
  does to training, a wrong and a right line): the page explains itself offline, as
  ``tinytorch explain TT112`` does in the student's terminal;
- a message written for the notebook ("write it, then run this cell again") says on the page
  only what is missing ("not written yet: CosineSchedule.get_lr"): after grading nothing can be
  run again (``feedback_message``, applied to every message shown).

What changes for the grader: the templates are compiled once per process, not once per
page; a class's pages are mostly the same given code, so its syntax highlighting is computed
once per process and reused; and the page is not re-parsed afterwards
(nbconvert's HTML exporter re-reads its whole output with BeautifulSoup only to add ``alt``
text to images and ``tabindex`` to cells, about half of a page's time: a feedback page carries
no image output, and the template sets ``tabindex`` itself). The markdown cells, the same on
most pages too, are rendered once per process, their formulas included.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import Any

import nbgrader
from jinja2 import pass_context
from jinja2.bccache import Bucket, BytecodeCache
from nbconvert.exporters import HTMLExporter
from nbconvert.exporters.templateexporter import TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbconvert.preprocessors import Preprocessor
from traitlets import List, Unicode

from course.classroom import inert

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
    from course.assignment.cells import source_graded_cells as graded_cells

    return {cell.grade_id: f"{cell.check}: {TITLES.get(cell.check, cell.grade_id)}"
            for cell in graded_cells()}


def _titles(notebook: Any) -> dict[str, str]:
    """grade_id -> "check: title" for the graded test cells of ``notebook``."""
    from checks.registry import TITLES
    from course.assignment.cells import graded_cells

    return {grade_id: f"{check}: {TITLES.get(check, grade_id)}"
            for grade_id, _, check in graded_cells(notebook) if check}


def graded_title(grade_id: str) -> str:
    """A graded cell's name as the student reads it (its grade_id if it is not the course's)."""
    return graded_titles().get(grade_id, grade_id)


def is_check(cell: Any) -> bool:
    """A graded test cell: graded, not an answer (its source is the course's, hidden tests
    included; its outputs are the trusted outcome)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return (cell.get("cell_type") == "code" and isinstance(meta, dict)
            and bool(meta.get("grade")) and not meta.get("solution"))


class HideCheckSource(Preprocessor):
    """Empty every graded test cell's source before the page is written: the template shows
    such a cell by its name, points and message, and its source (the hidden tests among it)
    must not reach the page even through a template that would show it."""

    def preprocess_cell(self, cell: Any, resources: dict[str, Any],
                        index: int) -> tuple[Any, dict[str, Any]]:
        if is_check(cell):
            cell.source = ""
        return cell, resources


def is_written_answer(cell: Any) -> bool:
    """A written answer graded by hand: a markdown cell that is both answer and grade."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return (cell.get("cell_type") == "markdown" and isinstance(meta, dict)
            and bool(meta.get("grade")) and bool(meta.get("solution")))


#: A code in a likely-bug line of a message, after ``ansi2html`` (the brackets survive it).
_CODE_ON_PAGE = re.compile(r"(likely bug \[)(TT\d{3})(\]:)")


def link_codes(html: str) -> str:
    """A message's HTML with each known code linked to its explanation on the page."""
    from checks import catalog

    known = catalog.by_code()
    return _CODE_ON_PAGE.sub(
        lambda m: (f'{m[1]}<a class="cause-code" href="#{m[2]}">{m[2]}</a>{m[3]}'
                   if m[2] in known else m[0]), html)


class CollectCodes(Preprocessor):
    """The codes the page's graded messages name, in order (``resources["codes"]``), each with
    its explanation, for the page's last section."""

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        from checks import catalog
        from checks.diagnose import LIKELY_BUG

        found: dict[str, str] = {}
        for cell in nb.cells:
            if not is_check(cell):
                continue
            for output in cell.get("outputs", []):
                text = "\n".join([*output.get("traceback", []), output.get("text", ""),
                                  output.get("data", {}).get("text/plain", "")])
                for match in LIKELY_BUG.finditer(text):
                    cause = catalog.by_code().get(match[1] or "")
                    if cause is not None and cause.code not in found:
                        found[cause.code] = cause.explanation()
        resources["codes"] = found
        return nb, resources


class MarkPendingAnswers(Preprocessor):
    """Mark each written answer by the course's one rule (``course.classroom.manual.state``):
    one that waits for a grader (``pending``) says "not graded yet" with its points instead of
    a score of 0 nobody gave, and one rewritten after it was graded says what it had
    (``earlier``: "was 2/3 for an earlier answer"). The comment shown under it
    (``grader_comment``) is the grader's, or nbgrader's "No response.", never the earlier
    grade's note. The page also states what was graded
    (``resources["graded"]``): the submission's time, the digest of the bytes graded, when,
    and the answers still waiting."""

    def preprocess(self, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        info = resources.get("nbgrader", {})
        if not all(k in info for k in ("db_url", "notebook", "assignment", "student")):
            return nb, resources
        from nbgrader.api import Gradebook, MissingEntry

        from course.classroom import manual

        graded = dict(nb.metadata.get("tinytorch_graded") or {})
        answers = {cell.metadata.nbgrader["grade_id"]: cell
                   for cell in nb.cells if is_written_answer(cell)}
        waiting = []
        with Gradebook(info["db_url"]) as gradebook:
            try:
                submission = gradebook.find_submission(info["assignment"], info["student"])
                stamp = submission.timestamp
                graded["submitted"] = stamp.strftime("%Y-%m-%d %H:%M:%S UTC") if stamp else None
            except MissingEntry:
                pass
            for grade_id, cell in answers.items():
                try:
                    grade = gradebook.find_grade(grade_id, info["notebook"], info["assignment"],
                                                 info["student"])
                    comment = gradebook.find_comment(grade_id, info["notebook"],
                                                     info["assignment"], info["student"])
                except MissingEntry:
                    continue
                decided = manual.state(grade, cell.source)
                cell.metadata.nbgrader["pending"] = decided in (manual.TO_GRADE, manual.EMPTY)
                cell.metadata.nbgrader["earlier"] = manual.earlier_of(comment.auto_comment)
                earlier = cell.metadata.nbgrader["earlier"]
                automatic = (comment.auto_comment or "").replace(earlier or "", "").strip()
                # its own key: nbgrader's GetGrades, which runs after, writes ``comment``
                cell.metadata.nbgrader["grader_comment"] = (comment.manual_comment or automatic
                                                            or None)
                if cell.metadata.nbgrader["pending"]:
                    waiting.append(grade_id)
        graded["waiting"] = waiting
        resources["graded"] = graded
        return nb, resources


# What a message says to do in the notebook, which a feedback page cannot: after grading,
# nothing is run again. "not written yet: X" and a line "  this check runs X; write it, then
# run this cell again" become "not written yet: X".
_RERUN = re.compile(r"\s*[;,.]?\s*(?:(?:write|fix) (?:it|them)\s*(?:,|and)?\s*)?(?:then\s+)?"
                    r"(?:re-?)?run (?:this|the) cell again\b\.?", re.IGNORECASE)
_ONLY_WHAT_RUNS = re.compile(r"\s*this check runs [\w.]+\s*")


def feedback_message(text: str) -> str:
    """A check's message as the feedback page shows it: without the instruction to run the
    cell again (a line that only said what the check runs and to run it again goes)."""
    lines = []
    for line in str(text).split("\n"):
        if _RERUN.search(line):
            line = _RERUN.sub("", line).rstrip()
            if not line.strip() or _ONLY_WHAT_RUNS.fullmatch(line):
                continue
        lines.append(line)
    return "\n".join(lines)


# ---- maths: LaTeX in markdown becomes MathML when the page is made

#: MathML's presentation elements and the attributes the converter writes for them: a
#: formula whose MathML holds anything else (``\href``'s link, ``\style``, ``\class``) is
#: shown as its source.
_MATHML_TAGS = frozenset(
    "math maction annotation annotation-xml menclose merror mfenced mfrac mi mlabeledtr "
    "mmultiscripts mn mo mover mpadded mphantom mprescripts mroot mrow ms mspace msqrt mstyle "
    "msub msubsup msup mtable mtd mtext mtr munder munderover none semantics".split())
_MATHML_ATTRIBUTES = frozenset(
    "accent accentunder align columnalign columnlines columnspacing depth display "
    "displaystyle equalcolumns equalrows fence form frame framespacing height largeop lspace "
    "linebreak linethickness mathbackground mathcolor mathsize mathvariant maxsize minsize "
    "movablelimits notation rowalign rowlines rowspacing rspace scriptlevel separator "
    "stretchy symmetric voffset width".split())
#: Text mode's escaped characters (``\text{min\_lr}``), which the converter leaves escaped.
_TEXT_ESCAPE = re.compile(r"\\([_%&#$])")
#: Longer formulas are shown as their source (a student's markdown cell bounds no work).
MAX_FORMULA = 4000


def _mathml(tex: str, display: bool) -> str | None:
    """``tex`` as MathML, or None if the converter cannot render it faithfully."""
    from latex2mathml.converter import convert

    if len(tex) > MAX_FORMULA:
        return None
    try:
        mathml = convert(tex, display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - any refusal of the converter: the source is shown
        return None
    mathml = _TEXT_ESCAPE.sub(lambda m: escape(m[1], quote=False), mathml)
    if "\\" in mathml:  # a command the converter passed through as text (\arg, \foo)
        return None
    try:
        tree = ET.fromstring(mathml)  # noqa: S314 - the converter's output, no DTD or entity
    except ET.ParseError:  # e.g. ``\text{<b}`` is copied raw: it would swallow the page
        return None
    for element in tree.iter():
        if (element.tag.rpartition("}")[2] not in _MATHML_TAGS
                or any(name.rpartition("}")[2] not in _MATHML_ATTRIBUTES and name != "xmlns"
                       for name in element.attrib)):
            return None
    return mathml


@functools.lru_cache(maxsize=4096)
def math_html(tex: str, display: bool = False) -> str:
    """A formula of a markdown cell as HTML: MathML, or its LaTeX source in ``<code>``."""
    mathml = _mathml(tex, display)
    if mathml is not None:
        return mathml
    code = f'<code class="tex">{escape(tex.strip(), quote=False)}</code>'
    return f'<span class="math-display">{code}</span>' if display else code


class _MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer (its parser finds ``$...$``, ``$$...$$``, ``\\(...\\)``,
    ``\\[...\\]`` and ``\\begin{env}``), writing each formula as MathML instead of leaving it,
    delimiters and all, for MathJax."""

    def inline_math(self, body: str) -> str:
        return math_html(body, display=False)

    def block_math(self, body: str) -> str:
        return math_html(body, display=True)

    def latex_environment(self, name: str, body: str) -> str:
        return math_html(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)


@functools.lru_cache(maxsize=1024)
def _markdown_html(source: str, anchor_link_text: str, exclude_anchor_links: bool) -> str:
    """A markdown cell without attachments as HTML: the same on most pages of a class."""
    renderer = _MathMLRenderer(escape=False, anchor_link_text=anchor_link_text,
                               exclude_anchor_links=exclude_anchor_links)
    return inert.clean(MarkdownWithMath(renderer=renderer).render(source))


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

    def _init_preprocessors(self) -> None:
        super()._init_preprocessors()
        self.register_preprocessor(HideCheckSource, enabled=True)
        self.register_preprocessor(MarkPendingAnswers, enabled=True)
        self.register_preprocessor(CollectCodes, enabled=True)

    @pass_context
    def markdown2html(self, context: Any, source: str) -> str:
        """Markdown to HTML with the maths as MathML (nbconvert's filter, which leaves the
        LaTeX for MathJax, otherwise), holding only what ``inert`` allows: a student's answer
        and a grader's comment alike run and load nothing."""
        cell = context.get("cell", {})
        attachments = cell.get("attachments", {}) if hasattr(cell, "get") else {}
        if not attachments and not self.embed_images and not self.lexer_options:
            return _markdown_html(source, self.anchor_link_text, self.exclude_anchor_links)
        path = context.get("resources", {}).get("metadata", {}).get("path", "")
        renderer = _MathMLRenderer(
            escape=False, attachments=attachments, embed_images=self.embed_images, path=path,
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links, **self.lexer_options)
        return inert.clean(MarkdownWithMath(renderer=renderer).render(source))

    # The course's page, whatever the configuration says of HTML exporters: nbgrader's
    # ``GenerateFeedback`` (the command, the formgrader's button) sets its own ``feedback``
    # template for every one of them. Not configurable here, so its settings do not apply.
    template_name = Unicode(TEMPLATE)
    extra_template_basedirs = List(Unicode(), [str(TEMPLATES), str(NBGRADER_TEMPLATES)])
    extra_template_paths = List(Unicode(), [str(NBGRADER_TEMPLATES), str(BOOTSTRAP_CSS)])

    def default_filters(self) -> Any:
        yield from super().default_filters()
        yield ("graded_title", graded_title)
        yield ("feedback_message", feedback_message)
        yield ("link_codes", link_codes)

    def from_notebook_node(self, nb: Any, resources: dict[str, Any] | None = None,
                           **kw: Any) -> tuple[str, dict[str, Any]]:
        info = nb.metadata.get("language_info", {})
        lexer = info.get("pygments_lexer", info.get("name", None))
        self.register_filter("highlight_code", _SharedHighlight(pygments_lexer=lexer, parent=self))
        # each graded cell named from this notebook's own test cells (read before their source
        # is hidden): the page needs no copy of the course's source notebook
        titles = _titles(nb)
        self.register_filter("graded_title", lambda grade_id: titles.get(grade_id, grade_id))
        resources = self._init_resources(resources)
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)


def configure(settings: Any) -> None:
    """Make nbgrader's ``generate_feedback`` write this course's page (the course's
    ``nbgrader_config.py`` names ``FeedbackExporter`` too, for the formgrader's button and
    ``nbgrader generate_feedback``; the exporter chooses its own template)."""
    settings.GenerateFeedback.exporter_class = FeedbackExporter
