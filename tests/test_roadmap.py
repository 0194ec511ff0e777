"""The convergence roadmap, checked against figures computed by hand (tests/data/roadmap/expected.yaml)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from estate import roadmap as rm
from estate.compliance.engine import score
from estate.compliance.findings import CouncilResult, Finding, Report
from estate.loader import Estate, load_estate
from estate.reports.roadmap import gantt_svg, render_table, score_svg

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "roadmap"
EXPECTED: dict[str, Any] = yaml.safe_load((DATA / "expected.yaml").read_text(encoding="utf-8"))
TODAY: dt.date = EXPECTED["today"]
FIXTURE_COUNCILS = ("alpha", "beta")


@pytest.fixture(scope="module")
def fixture_estate(tmp_path_factory: pytest.TempPathFactory) -> Estate:
    root = tmp_path_factory.mktemp("roadmap")
    shutil.copy(REPO / "framework.yaml", root / "framework.yaml")
    shutil.copytree(DATA / "inventories", root / "inventories")
    return load_estate(root)


def fixture_report(estate: Estate) -> Report:
    """The hand-written findings of tests/data/roadmap/findings.yaml as the engine would report them."""
    data = yaml.safe_load((DATA / "findings.yaml").read_text(encoding="utf-8"))
    councils = {}
    for key, items in data.items():
        exemptions = estate.council(key).council.exemptions
        findings = [
            Finding(rule_id=f["rule"], title=f["rule"], severity="high", enforcement="mandatory", control="0.0",
                    clause="SE: fixture", area=f["area"], council=key, kind="asset", resource=f["resource"],
                    status=f["status"], message="", fix="",
                    exemption=exemptions[f["exemption"]] if "exemption" in f else None)
            for f in items
        ]
        overall, areas, total, passing = score(findings)
        councils[key] = CouncilResult(key, overall, findings, areas, total, passing)
    return Report(estate.framework.version, TODAY, ("assets",), councils)


@pytest.fixture(scope="module")
def roadmap(fixture_estate: Estate) -> rm.Roadmap:
    return rm.build(fixture_estate, today=TODAY, report=fixture_report(fixture_estate))


@pytest.mark.parametrize("key", FIXTURE_COUNCILS)
def test_moves_match_the_hand_computed_fixture(roadmap: rm.Roadmap, key: str) -> None:
    want = EXPECTED[key]
    got = roadmap.councils[key]
    assert got.users_share == pytest.approx(want["users_share"])
    assert got.score == pytest.approx(want["score"], abs=1e-4)
    assert list(got.converged) == want["converged"]
    moves = [
        {"area": m.area, "blocking": m.blocking.id if m.blocking else None, "can_move": m.can_move,
         "quarter": str(m.quarter), "waits_for": list(m.waits_for), "bridge_days": m.bridge_days,
         "retired": pytest.approx(m.retired), "share": pytest.approx(m.share), "saving": pytest.approx(m.saving)}
        for m in got.moves
    ]
    assert moves == want["moves"]
    assert str(got.converges) == want["converges"]


@pytest.mark.parametrize("key", FIXTURE_COUNCILS)
def test_projected_score_per_quarter_matches_the_fixture(roadmap: rm.Roadmap, key: str) -> None:
    got = {str(q): round(s, 4) for q, s in roadmap.councils[key].projection}
    assert got == EXPECTED[key]["projection"]


@pytest.mark.parametrize("key", FIXTURE_COUNCILS)
def test_savings_match_the_fixture(roadmap: rm.Roadmap, key: str) -> None:
    want = EXPECTED[key]
    got = roadmap.councils[key]
    assert got.retired == pytest.approx(want["retired"])
    assert got.share == pytest.approx(want["share"])
    assert got.saving == pytest.approx(want["saving"])
    if want["channel_shift"] is None:
        assert got.channel_shift is None
    else:
        assert got.channel_shift is not None
        for name, value in want["channel_shift"].items():
            assert getattr(got.channel_shift, name) == pytest.approx(value), name


@pytest.mark.parametrize("key", FIXTURE_COUNCILS)
def test_exemptions_outliving_their_contract_are_flagged(roadmap: rm.Roadmap, key: str) -> None:
    got = [{"rule": f.rule, "contract": f.contract, "expires": f.expires, "contract_end": f.contract_end,
            "days": (f.expires - f.contract_end).days} for f in roadmap.councils[key].flags]
    assert got == EXPECTED[key]["flags"]
    for flag in roadmap.councils[key].flags:
        assert f"{(flag.expires - flag.contract_end).days} days after its contract {flag.contract}" in flag.message


def test_dependencies_move_strictly_first(roadmap: rm.Roadmap, fixture_estate: Estate) -> None:
    deps: dict[str, list[str]] = {a.area: list(a.depends_on) for a in fixture_estate.framework.migration.areas}
    for council in roadmap.councils.values():
        when = {m.area: m.quarter for m in council.moves}
        order = [m.area for m in council.moves]
        for area, quarter in when.items():
            for dep in deps[area]:
                if dep in when:
                    assert when[dep] < quarter
                    assert order.index(dep) < order.index(area)
                else:
                    assert dep in council.converged


def test_json_output_carries_the_same_figures(roadmap: rm.Roadmap) -> None:
    data = json.loads(roadmap.to_json())
    assert data["date"] == TODAY.isoformat()
    alpha = data["councils"]["alpha"]
    assert [m["area"] for m in alpha["moves"]] == [m["area"] for m in EXPECTED["alpha"]["moves"]]
    assert alpha["savings"]["annual_saving"] == EXPECTED["alpha"]["saving"]
    assert alpha["savings"]["channel_shift"]["annual_saving"] == EXPECTED["alpha"]["channel_shift"]["annual_saving"]
    assert alpha["moves"][1]["blocking_contract"]["id"] == "AL-C02"
    assert alpha["moves"][1]["bridge_days"] == 242
    assert data["councils"]["beta"]["flags"][0]["rule"] == "DCN-004"


def test_quarter_arithmetic() -> None:
    assert rm.Quarter.after(dt.date(2027, 6, 30)) == rm.Quarter(2027, 3)
    assert rm.Quarter.after(dt.date(2027, 7, 1)) == rm.Quarter(2027, 4)
    assert rm.Quarter.after(dt.date(2027, 12, 31)) == rm.Quarter(2028, 1)
    assert rm.Quarter(2027, 4).start == dt.date(2027, 10, 1)
    assert rm.Quarter(2027, 4).end == dt.date(2027, 12, 31)
    assert [str(q) for q in rm.Quarter(2026, 4).until(rm.Quarter(2027, 2))] == ["2026 Q4", "2027 Q1", "2027 Q2"]


def test_a_council_with_nothing_left_to_move(fixture_estate: Estate) -> None:
    report = fixture_report(fixture_estate)
    beta = report.councils["beta"]
    passing = [Finding(**{**f.__dict__, "status": "pass", "exemption": None}) for f in beta.findings]
    report.councils["beta"] = CouncilResult("beta", 1.0, passing, {}, 0, 0)
    # every legacy contract has ended by 2028
    plan = rm.build(fixture_estate, today=dt.date(2028, 1, 1), councils=["beta"], report=report)
    beta_plan = plan.councils["beta"]
    assert beta_plan.moves == ()
    assert beta_plan.converges is None
    assert [s for _, s in beta_plan.projection] == [1.0]
    assert "every area converged" in gantt_svg(plan)


def test_table_names_the_contract_the_move_and_the_saving(roadmap: rm.Roadmap) -> None:
    text = render_table(roadmap, width=220)
    assert "AL-C02 Old Identity Ltd" in text
    assert "2027 Q4" in text
    assert "network +242d" in text
    assert "projected score: 50% now, 67% in 2027 Q3, 83% in 2027 Q4, 100% in 2028 Q2" in text
    assert "channel shift £364,000" in text
    assert "total £44,000" in text
    assert "flag: exemption DSK-009 (*) expires 2028-06-30, 91 days after its contract AL-C03" in text


def test_charts_draw_one_mark_per_move_and_one_line_per_council(roadmap: rm.Roadmap) -> None:
    gantt = gantt_svg(roadmap)
    moves = sum(len(c.moves) for c in roadmap.councils.values())
    assert gantt.count("<polygon") == moves
    assert "alpha moves identity in 2027 Q4" in gantt
    line = score_svg(roadmap)
    assert line.count("<polyline") == len(roadmap.councils)
    assert "alpha 2027 Q3: 67%" in line


# --------------------------------------------------------------------------- the example councils, the CLI


def test_newham_channel_shift_by_hand() -> None:
    estate = load_estate(REPO)
    shift = rm.channel_shift(estate, estate.council("newham").council)
    assert shift is not None
    # 96,000 + 540,000 + 880,000 = 1,516,000 a year; 75% on the web = 1,137,000: 257,000 move.
    # face to face: 257,000 x 96,000 / 636,000 = 38,792.45; phone: 218,207.55.
    # 38,792.45 x (17.0 - 0.6) + 218,207.55 x (4.6 - 0.6) = 636,196.23 + 872,830.19 = 1,509,026.42
    assert shift.moved == pytest.approx(257_000)
    assert shift.from_face_to_face == pytest.approx(38_792.45, abs=0.01)
    assert shift.annual_saving == pytest.approx(1_509_026.42, abs=0.01)


def test_example_roadmap_starts_at_the_check_score_and_flags_waltham_forest() -> None:
    from estate.compliance import evaluate

    estate = load_estate(REPO)
    report = evaluate(estate, today=TODAY)
    plan = rm.build(estate, today=TODAY, report=report)
    for key, council in plan.councils.items():
        first_quarter, first_score = council.projection[0]
        assert str(first_quarter) == "2026 Q4"
        assert first_score == pytest.approx(report.councils[key].score)
        assert council.projection[-1][1] == pytest.approx(1.0)
    # WF's HLP-001 exemption runs to 2028-09-30; its contract WF-C02 ends 2028-03-31
    flags = [(f.rule, f.contract) for f in plan.councils["waltham-forest"].flags]
    assert flags == [("HLP-001", "WF-C02")]
    assert plan.councils["havering"].flags == ()


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from estate import cli

    cli._register_extensions()
    return CliRunner().invoke(cli.app, list(args))


def test_roadmap_cli_json_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = _cli("roadmap", "--council", "newham", "--format", "json", "--today", TODAY.isoformat())
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data["councils"]) == ["newham"]
    assert data["councils"]["newham"]["savings"]["channel_shift"]["annual_saving"] == pytest.approx(1_509_026.42)
    unknown = _cli("roadmap", "--council", "camden")
    assert unknown.exit_code == 2
    assert unknown.stderr.splitlines() == [
        "inventories: council: unknown council 'camden' (known: havering, newham, waltham-forest)"]
    bad = _cli("roadmap", "--format", "pdf")
    assert bad.exit_code == 2
    assert bad.stderr.splitlines() == ["--format: unknown format 'pdf' (known: table, json, html)"]


def test_roadmap_html_is_the_check_report_with_the_roadmap_charts(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    out = tmp_path / "report.html"
    result = _cli("roadmap", "--format", "html", "-o", str(out), "--today", TODAY.isoformat())
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    for section in ('id="scores"', 'id="findings"', 'id="roadmap"'):
        assert section in page
    assert 'class="gantt"' in page and 'class="convergence"' in page
    assert "waltham-forest moves desktop in" in page
    check = tmp_path / "check.html"
    result = _cli("check", "--format", "html", "-o", str(check), "--today", TODAY.isoformat())
    assert result.exit_code in (0, 1), result.output
    assert 'class="gantt"' in check.read_text(encoding="utf-8")
