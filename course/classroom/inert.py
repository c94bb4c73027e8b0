"""Student text shown to a grader or a student runs nothing and loads nothing.

A written answer is markdown, and markdown holds HTML: an ``<img onerror=...>`` in an answer
runs in the grader's browser when the formgrader shows the submission, with the grader's
session (it can award points, read other submissions, write comments). Two defences, one
allow-list:

* ``answer_as_text``: as a submission is taken in (``course.classroom.nbgrader_trusted``'s
  autograde, before the formgrader can open it), an answer whose rendering holds anything outside
  the allow-list (a script, an event handler, an iframe, a form, a style, a remote image, a link
  to ``javascript:``) is kept as its text, in a fenced block, under a line that says so. An
  honest answer (markdown, maths, code, tables) is left exactly as written.
* ``clean``: every page the course renders (the feedback page) passes its markdown's HTML
  through ``nh3`` (the Rust sanitizer Ammonia) with the same allow-list, whatever the source.
"""

from __future__ import annotations

import functools
import re
from html.parser import HTMLParser

import nh3
from nbconvert.filters.markdown_mistune import markdown2html_mistune

_HTML = {"a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "details", "div", "dl",
         "dt", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "kbd", "li", "ol",
         "p", "pre", "s", "samp", "span", "strong", "sub", "summary", "sup", "table", "tbody",
         "td", "tfoot", "th", "thead", "tr", "u", "ul"}
#: The MathML the feedback page writes for formulas (latex2mathml).
_MATHML = {"math", "menclose", "mfenced", "mfrac", "mi", "mn", "mo", "mover", "mpadded",
           "mphantom", "mroot", "mrow", "ms", "mspace", "msqrt", "mstyle", "msub", "msubsup",
           "msup", "mtable", "mtd", "mtext", "mtr", "munder", "munderover", "semantics",
           "annotation"}
_MATHML_ATTRIBUTES = {"accent", "accentunder", "close", "columnalign", "columnspacing", "depth",
                      "display", "displaystyle", "encoding", "fence", "height", "linethickness",
                      "lspace", "mathvariant", "maxsize", "minsize", "movablelimits",
                      "notation", "open", "rowspacing", "rspace", "scriptlevel", "separator",
                      "separators", "stretchy", "width", "xmlns"}
TAGS = _HTML | _MATHML
ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title", "class"}, "img": {"src", "alt", "title", "width", "height"},
    "td": {"align"}, "th": {"align"}, "ol": {"start"},
    **{f"h{n}": {"id"} for n in range(1, 7)},
    **{tag: {"class"} for tag in ("code", "pre", "span", "div")},
    **{tag: set(_MATHML_ATTRIBUTES) | {"class"} for tag in _MATHML},
}
#: A link may lead to these; an image only comes with the page (``data:image/``).
LINK_SCHEMES = {"http", "https", "mailto"}
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*):")


def _allowed_url(tag: str, attribute: str, value: str) -> bool:
    if attribute == "src":
        return value.strip().lower().startswith("data:image/")
    if attribute == "href":
        scheme = _SCHEME.match(value)
        return scheme is None or scheme.group(1).lower() in LINK_SCHEMES
    return True


def _filter(tag: str, attribute: str, value: str) -> str | None:
    return value if _allowed_url(tag, attribute, value) else None


def clean(html: str) -> str:
    """``html`` with only the allow-list's tags, attributes and addresses (``nh3``)."""
    return nh3.clean(html, tags=TAGS, attributes=ATTRIBUTES, attribute_filter=_filter,
                     url_schemes=LINK_SCHEMES | {"data"}, strip_comments=True,
                     link_rel="noopener noreferrer nofollow")


class _Active(HTMLParser):
    """Finds the first tag, attribute or address of a fragment that the allow-list refuses."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.found:
            return
        if tag not in TAGS:
            self.found = f"<{tag}>"
            return
        for name, value in attrs:
            if name not in ATTRIBUTES.get(tag, set()):
                self.found = f"<{tag} {name}=...>"
                return
            if not _allowed_url(tag, name, value or ""):
                self.found = f"<{tag} {name}={(value or '')[:40]!r}>"
                return

    handle_startendtag = handle_starttag


def active_part(markdown: str) -> str | None:
    """What in ``markdown``'s rendering would run or load something (the first such tag,
    attribute or address), or None for text that is only text.

    A class's notebooks share most of their markdown (the lesson's cells): a text up to
    ``REMEMBERED_UP_TO`` characters is rendered once per process and its answer remembered
    (rendering is most of this module's cost in autograde); a longer one, which only a
    student's answer is, is rendered every time, so no submission can fill the memory."""
    if len(markdown) <= REMEMBERED_UP_TO:
        return _remembered(markdown)
    return _render_and_find(markdown)


#: The longest markdown text whose answer ``active_part`` remembers (2,048 of them at most).
REMEMBERED_UP_TO = 16_384


def _render_and_find(markdown: str) -> str | None:
    finder = _Active()
    finder.feed(markdown2html_mistune(markdown))
    finder.close()
    return finder.found


_remembered = functools.lru_cache(maxsize=2048)(_render_and_find)


#: Heads an answer kept as its text.
KEPT_AS_TEXT = ("*This answer held markup a browser would run or load (`{part}`); it is shown "
                "as its text.*")


def answer_as_text(markdown: str) -> str | None:
    """``markdown`` as a fenced block of text under a line that says why, if its rendering
    holds anything outside the allow-list; None when it is safe as it is."""
    part = active_part(markdown)
    if part is None:
        return None
    longest = max((len(run) for run in re.findall(r"`+|~+", markdown)), default=0)
    fence = "`" * max(3, longest + 1)
    shown = part.replace("`", "'")
    return f"{KEPT_AS_TEXT.format(part=shown)}\n\n{fence}text\n{markdown}\n{fence}\n"
