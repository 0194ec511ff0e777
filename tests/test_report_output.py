"""The roadmap's rendering moved to estate/reports/ (and every chart to one palette) without changing a byte:
`estate roadmap` (table and JSON) and the roadmap's and the domain chart's sections of `estate check --format html`
on the example councils equal what they were before the move (tests/data/report_output/, see its SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from estate.cli import _register_extensions, app
from estate.reports import palette

REPO = Path(__file__).resolve().parent.parent
RECORDED = REPO / "tests" / "data" / "report_output"
TODAY = "2026-11-29"


@pytest.fixture(autouse=True)
def _example_councils(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "160")  # the table's width, as recorded
    _register_extensions()


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code in (0, 1), result.output  # 1: a mandatory rule fails (Waltham Forest's legacy estate)
    return result.stdout


def _section(page: str, start: str) -> str:
    begin = page.index(start)
    return page[begin:page.index("</section>", begin) + len("</section>")] + "\n"


def test_the_roadmap_table_and_json_are_as_recorded() -> None:
    assert _run("roadmap", "--today", TODAY) == (RECORDED / "roadmap.txt").read_text(encoding="utf-8")
    assert _run("roadmap", "--today", TODAY, "--format", "json") == (RECORDED / "roadmap.json").read_text(
        encoding="utf-8")


def test_the_html_report_draws_the_roadmap_and_the_domains_as_recorded() -> None:
    page = _run("check", "--format", "html", "--today", TODAY)
    for name, start in (("roadmap-section.html", '<section class="roadmap" id="roadmap">'),
                        ("domains-section.html", '<section id="domains">')):
        assert _section(page, start) == (RECORDED / name).read_text(encoding="utf-8"), name


def test_the_page_and_the_charts_take_their_colours_from_the_palette() -> None:
    page = _run("check", "--format", "html", "--today", TODAY)
    style = page[page.index("<style>"):page.index("</style>")]
    for colour in (palette.TEXT, palette.FAIL, palette.PASS, palette.EXEMPT, palette.FILL, palette.RULE):
        assert colour in style
    roadmap = _section(page, '<section class="roadmap" id="roadmap">')
    councils = ["havering", "newham", "waltham-forest"]
    for i, key in enumerate(councils):  # each council's line in the projection chart, in the roadmap's order
        assert f'stroke="{palette.series(i, palette.ROADMAP_SERIES)}" stroke-width="2"/>\n<text' in roadmap, key
    domains = _section(page, '<section id="domains">')
    for i in range(len(councils)):  # matplotlib's bars, one colour per council
        assert f"fill: {palette.series(i)}" in domains
