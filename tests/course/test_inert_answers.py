"""A written answer runs nothing and loads nothing where a grader or a student reads it
(``course.classroom.inert``): an answer holding script, event handlers, frames, forms, styles,
remote images or ``javascript:`` links is kept as its text when the submission is taken in, so
the notebook the formgrader opens holds none of it, and the feedback page passes every
markdown cell through the sanitizer. Honest answers (markdown, maths, code, tables) are left
exactly as written."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from submissions import from_training_source, write

from course.assignment import paths
from course.classroom import autograde, inert, nbgrader_trusted

ATTACKS = {
    "img-onerror": "Clipping keeps the direction. <img src=x onerror=\"fetch('/formgrader')\">",
    "script": "<script>document.title='owned'</script>",
    "svg-onload": "<svg onload=alert(1)><circle r=4></circle></svg>",
    "iframe": "<iframe src=\"/formgrader/manage_students\"></iframe>",
    "form": "<form action=\"/api/grade\" method=post><input name=score value=3></form>",
    "style": "<style>.score { display: none }</style>",
    "remote-image": "![pixel](https://tracker.example/p.png)",
    "javascript-link": "[click](javascript:alert(document.cookie))",
    "event-on-allowed-tag": "<b onmouseover=\"alert(1)\">bold</b>",
    "meta-refresh": "<meta http-equiv=refresh content=\"0;url=https://x.example\">",
}
HONEST = [
    "Clipping by the **global** norm keeps the update's direction: $\\|g\\|_2 \\le c$.",
    "Adam keeps two extra floats per parameter:\n\n| optimizer | state |\n|---|---|\n"
    "| SGD | $P$ |\n| Adam | $3P$ |",
    "```python\nfor p in params:\n    p.grad = None  # <b>not</b> HTML here\n```",
    "A link for later: [the paper](https://arxiv.org/abs/1608.03983), and `a < b`.",
    "<details><summary>why</summary>the minimum is reached at the last epoch</details>",
]


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_an_active_answer_is_kept_as_its_text(name: str) -> None:
    kept = inert.answer_as_text(ATTACKS[name])
    assert kept is not None, f"{name} would run or load something, and was not caught"
    html = BeautifulSoup(inert.clean(nbformat_markdown(kept)), "html.parser")
    for tag in html.find_all(True):
        assert tag.name in inert.TAGS, (name, tag.name)
        assert not any(a.startswith("on") for a in tag.attrs), (name, tag)
    assert "javascript:" not in str(html.find_all("a"))
    assert ATTACKS[name].split()[0][:20] in html.get_text(), "the grader still reads it"


@pytest.mark.parametrize("text", HONEST)
def test_an_honest_answer_is_left_as_written(text: str) -> None:
    assert inert.active_part(text) is None
    assert inert.answer_as_text(text) is None


def test_the_lessons_own_markdown_is_left_as_written() -> None:
    notebook = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    active = {i: inert.active_part(c.source) for i, c in enumerate(notebook.cells)
              if c.cell_type == "markdown"}
    assert active and not any(active.values()), active


def test_the_sanitizer_keeps_the_pages_maths_and_links() -> None:
    html = ('<h2 id="x">x<a class="anchor-link" href="#x">¶</a></h2><p><math display="block">'
            '<mi mathvariant="normal">x</mi><mo stretchy="false">(</mo></math>'
            '<a href="https://a.example">a</a><img src="https://t.example/p.png">'
            '<img src="data:image/png;base64,AAAA" alt="plot"></p>')
    cleaned = inert.clean(html)
    assert '<math display="block">' in cleaned and 'mathvariant="normal"' in cleaned
    assert 'href="#x"' in cleaned and 'href="https://a.example"' in cleaned
    assert "t.example" not in cleaned and 'src="data:image/png;base64,AAAA"' in cleaned


def nbformat_markdown(text: str) -> str:
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    return markdown2html_mistune(text)


def _with_answers(answers: dict[str, str]) -> nbformat.NotebookNode:
    notebook = from_training_source(paths.REFERENCE.read_text())
    for cell in notebook.cells:
        if cell.id in answers:
            cell.source = answers[cell.id]
    return notebook


@pytest.mark.slow
def test_the_formgrader_notebook_and_the_feedback_page_hold_no_active_answer(
        copy_course: Callable[[Path], None], tmp_path: Path) -> None:
    """mallory's written answers carry the attacks, alice's are the reference's examples:
    after ``make autograde`` the notebook the formgrader opens holds mallory's answers as text
    and alice's unchanged, and neither feedback page holds a script, a handler or a remote
    address."""
    course = tmp_path / "course"
    course.mkdir()
    copy_course(course)
    notebook = nbformat.read(paths.SOURCE_NOTEBOOK, as_version=4)
    manual = [c.id for c in notebook.cells
              if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "markdown"]
    attacks = dict(zip(manual, ATTACKS.values(), strict=False))
    downloads = tmp_path / "downloads"
    alice = _with_answers({})
    write(alice, downloads / "alice.ipynb")
    write(_with_answers(attacks), downloads / "mallory.ipynb")
    assert autograde.main([str(downloads), "--course", str(course)]) == 0
    assert nbgrader_trusted.feedback(course, ["alice", "mallory"], jobs=2) == []
    opened = {student: nbformat.read(course / "autograded" / student / paths.ASSIGNMENT
                                     / paths.NOTEBOOK, as_version=4)
              for student in ("alice", "mallory")}
    answers = {student: {c.id: c.source for c in nb.cells if c.id in manual}
               for student, nb in opened.items()}
    given = {c.id: c.source for c in alice.cells if c.id in manual}
    assert answers["alice"] == given
    for cell_id, attack in attacks.items():
        shown = answers["mallory"][cell_id]
        assert shown.startswith("*This answer held markup") and attack in shown, shown
        assert inert.active_part(shown) is None
    for student in ("alice", "mallory"):
        page = (course / "feedback" / student / paths.ASSIGNMENT / "07_training.html").read_text()
        soup = BeautifulSoup(page, "html.parser")
        for cell in soup.select("div.text_cell_render"):
            for tag in cell.find_all(True):
                assert not any(a.startswith("on") for a in tag.attrs), (student, tag)
                assert tag.name not in ("script", "iframe", "form", "style", "svg", "meta")
                assert "javascript:" not in str(tag.get("href", ""))
                assert not str(tag.get("src", "data:image/")).startswith(("http", "//", "x"))


def test_a_remembered_answer_is_the_same_and_a_long_text_is_never_kept() -> None:
    """The lesson's markdown is rendered once per process; what is remembered is the same
    answer as a fresh rendering, for an attack too, and a text too long to remember (only a
    student's answer is) is rendered every time."""
    attack = '<img src="x" onerror="alert(1)">'
    assert inert.active_part(attack) == inert.active_part(attack) == \
        inert._render_and_find(attack) is not None
    honest = "Clipping rescales the whole gradient: $\\|g\\| \\le c$."
    assert inert.active_part(honest) is None and inert.active_part(honest) is None
    long = "word " * (inert.REMEMBERED_UP_TO // 5) + attack
    assert len(long) > inert.REMEMBERED_UP_TO
    held = inert._remembered.cache_info().currsize
    assert inert.active_part(long) == inert._render_and_find(attack)
    assert inert._remembered.cache_info().currsize == held, "a long text was remembered"
