"""No silent pass, no traceback: `estate check --state/--facts/--history` refuse what they cannot judge in one
line (exit 2), and every rule reads typed values (a wrong JSON type in an export is a failing finding)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from estate.cli import _register_extensions, app
from estate.compliance import evaluate
from estate.compliance.engine import judge_estate, judge_resource, judge_stack
from estate.compliance.fixtures import BASELINE_FILE, fixture_path, load_case, read
from estate.controls.base import CloudResource, Context, Resource, WrongType, items, mapping, number, registry
from estate.loader import Estate
from estate.reports.charts import domain_chart, trend_chart
from tests import wire_support as wire

REPO = Path(__file__).resolve().parent.parent
BASELINE: dict[str, Any] = read(BASELINE_FILE)
TODAY = "2026-11-22"
VAULT = "azure-native:keyvault:Vault"
HOST_POOL = "azure-native:desktopvirtualization:HostPool"
_register_extensions()
runner = CliRunner()


def check(*args: str) -> Any:
    return runner.invoke(app, ["check", "--root", str(REPO), "--today", TODAY, *args])


def one_line(result: Any) -> str:
    """The single stderr line of a refused run (exit 2, no traceback)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def export(*resources: dict[str, Any], stack: str = "newham") -> dict[str, Any]:
    items_ = [{"urn": f"urn:pulumi:{stack}::shared-estate::pulumi:pulumi:Stack::shared-estate-{stack}",
               "type": "pulumi:pulumi:Stack"}]
    for r in resources:
        items_.append({"urn": f"urn:pulumi:{stack}::shared-estate::{r['type']}::{r['name']}", "type": r["type"],
                       "inputs": r.get("inputs", {}), "parent": items_[0]["urn"]})
    return {"version": 3, "deployment": {"resources": items_}}


def vault(props: Any) -> dict[str, Any]:
    return {"type": VAULT, "name": "kv-newham", "inputs": {"location": "uksouth", "properties": props}}


def state_file(tmp_path: Path, doc: Any, name: str = "s.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def findings_of(result: Any, rule: str) -> list[dict[str, Any]]:
    assert result.exit_code in (0, 1), (result.output, result.exception)
    doc = json.loads(result.stdout)
    return [f for c in doc["councils"].values() for f in c["findings"] if f["rule"] == rule]


# --------------------------------------------------------------------------- --state


def test_an_export_of_an_unknown_stack_is_an_error_not_dropped(tmp_path: Path) -> None:
    path = state_file(tmp_path, export(vault({"softDeleteRetentionInDays": 7}), stack="prod-havering"))
    line = one_line(check("--state", str(path)))
    assert line.endswith("s.json: deployment.resources[0].urn: stack 'prod-havering' is no stack of the estate "
                         "(known: shared, havering, newham, waltham-forest)")


def test_an_export_of_a_stack_council_leaves_out_is_an_error(tmp_path: Path) -> None:
    path = state_file(tmp_path, export(vault({"softDeleteRetentionInDays": 7}), stack="havering"))
    line = one_line(check("--state", str(path), "--council", "newham"))
    assert line.endswith("s.json: holds stack havering, which --council does not select (newham)")


@pytest.mark.parametrize(("deployment", "expected"), [
    ({"resources": None}, "deployment.resources: null: the export holds no resources to judge"),
    ({}, "deployment.resources: missing: the export holds no resources to judge"),
    ({"resources": []}, "deployment.resources: empty: the export holds no resources to judge"),
])
def test_an_export_with_no_resources_is_an_error(deployment: dict[str, Any], expected: str, tmp_path: Path) -> None:
    path = state_file(tmp_path, {"version": 3, "deployment": deployment})
    assert one_line(check("--state", str(path))).endswith(f"s.json: {expected}")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e309"])
def test_non_finite_numbers_in_an_export_are_refused(literal: str, tmp_path: Path) -> None:
    text = json.dumps(export(vault({"softDeleteRetentionInDays": 12345, "sku": {"name": "standard"}})))
    path = state_file(tmp_path, text.replace("12345", literal))
    line = one_line(check("--state", str(path)))
    assert "deployment.resources[1].inputs.properties.softDeleteRetentionInDays:" in line
    assert line.endswith("is not a number JSON allows")


def test_a_boolean_session_limit_does_not_pass_dsk_002(tmp_path: Path) -> None:
    path = state_file(tmp_path, export({"type": HOST_POOL, "name": "hp-newham",
                                        "inputs": {"location": "uksouth", "maxSessionLimit": True}}))
    (f,) = findings_of(check("--state", str(path), "--format", "json"), "DSK-002")
    assert f["status"] == "fail"
    assert "property maxSessionLimit is a boolean (true), expected a finite number" in f["message"]


def test_a_boolean_retention_does_not_pass_dcn_011(tmp_path: Path) -> None:
    path = state_file(tmp_path, export(vault({"softDeleteRetentionInDays": True, "sku": {"name": "standard"}})))
    (f,) = findings_of(check("--state", str(path), "--format", "json"), "DCN-011")
    assert f["status"] == "fail" and "softDeleteRetentionInDays is a boolean" in f["message"]


@pytest.mark.parametrize(("props", "expected"), [
    (["a list"], "property properties is a list, expected an object"),
    ("text", "property properties is a string, expected an object"),
    ({"softDeleteRetentionInDays": "90", "sku": {"name": "standard"}},
     "property properties.softDeleteRetentionInDays is a string, expected a finite number"),
    ({"softDeleteRetentionInDays": 90, "sku": ["standard"]}, "property properties.sku is a list, expected an object"),
])
def test_a_wrong_type_in_an_export_is_a_failing_finding_naming_the_property(props: Any, expected: str,
                                                                             tmp_path: Path) -> None:
    path = state_file(tmp_path, export(vault(props)))
    result = check("--state", str(path), "--format", "json")
    (f,) = findings_of(result, "DCN-011")
    assert f["status"] == "fail"
    assert f["message"] == f"kv-newham: {expected}; it cannot be judged"
    assert f["resource"].endswith("::kv-newham")


def test_an_export_of_only_the_stack_resource_is_an_error(tmp_path: Path) -> None:
    """The stack resource alone (a stack never deployed, or emptied): nothing to judge, so no silent pass."""
    path = state_file(tmp_path, export())
    assert one_line(check("--state", str(path))).endswith(
        "s.json: deployment.resources: only pulumi:pulumi:Stack: the export holds no resources of the stack, "
        "only the stack itself")


def special_files(tmp_path: Path, name: str) -> Iterator[tuple[Path, str]]:
    """A FIFO (nobody writes it: reading it would wait for ever), a sparse file larger than any JSON input could be,
    and /dev/zero through a link (reading it never ends), each with the end of the line that refuses it."""
    from estate.yamlsrc import LIMIT_JSON

    fifo = tmp_path / "fifo" / name
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    yield fifo, f"{name}: a FIFO, not a file: refused (not waited on)"
    huge = tmp_path / "huge" / name
    huge.parent.mkdir()
    with open(huge, "wb") as handle:
        handle.truncate(LIMIT_JSON + 1)
    yield huge, f"{name}: {LIMIT_JSON + 1:,} bytes: larger than the 128 MiB this file could ever be"
    zero = tmp_path / "zero" / name
    zero.parent.mkdir()
    zero.symlink_to("/dev/zero")
    yield zero, "character device, not a file: refused (not waited on)"


def test_a_special_or_huge_export_is_refused_without_reading_it(tmp_path: Path) -> None:
    for path, expected in special_files(tmp_path, "s.json"):
        assert one_line(check("--state", str(path))).endswith(expected), path


def test_a_special_or_huge_history_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    for path, expected in special_files(tmp_path, "h.jsonl"):
        before = os.lstat(path)
        report = path.parent / "r.json"
        assert one_line(check("--history", str(path), "--format", "json", "-o", str(report))).endswith(expected)
        after = os.lstat(path)
        assert (after.st_mode, after.st_size, after.st_ino) == (before.st_mode, before.st_size, before.st_ino)
        assert not report.exists()


def test_a_new_history_path_starts_the_history(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    result = check("--history", str(history), "--format", "json", "-o", str(tmp_path / "r.json"))
    assert result.exit_code in (0, 1), (result.output, result.exception)
    assert len(history.read_text(encoding="utf-8").splitlines()) == 1


def test_a_deeply_nested_export_is_one_line(tmp_path: Path) -> None:
    path = state_file(tmp_path, '{"deployment": {"resources": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    assert "s.json: nested too deeply to be a stack export" in one_line(check("--state", str(path)))


# --------------------------------------------------------------------------- --facts


def facts_file(tmp_path: Path, facts: Any) -> Path:
    path = tmp_path / "facts.json"
    path.write_text(facts if isinstance(facts, str) else json.dumps(facts), encoding="utf-8")
    return path


THIN = {"host": "nwm-tc01", "council": "newham", "role": "thin_client", "reachable": True}


@pytest.mark.parametrize(("facts", "expected"), [
    ([], "facts.json: an empty list: no host facts to judge"),
    ([{**THIN, "council": "havering"}], "facts.json: [0].council: host nwm-tc01 belongs to newham, not 'havering'"),
    ([{**THIN, "host": "nwm-tc99"}], "facts.json: [0].host: 'nwm-tc99' is no host of any council's hosts.yml"),
    ([{**THIN, "role": "router"}], "facts.json: [0].role: host nwm-tc01 is a thin_client in its hosts.yml, "
                                   "not a 'router'"),
    ([{**THIN, "role": "toaster"}], "facts.json: [0].role: Value error, unknown role 'toaster' (known: "
                                    "thin_client, app_server, dc_services, router, helpdesk, log_collector)"),
    ([{**THIN, "faillock_deny": True}], "facts.json: [0].faillock_deny: Input should be a valid integer"),
    ([{**THIN, "reachable": "yes"}], "facts.json: [0].reachable: Input should be a valid boolean"),
])
def test_bad_host_facts_are_one_line(facts: Any, expected: str, tmp_path: Path) -> None:
    assert one_line(check("--facts", str(facts_file(tmp_path, facts)))).endswith(expected)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "1e309"])
def test_non_finite_numbers_in_facts_are_refused(literal: str, tmp_path: Path) -> None:
    """Refused by the JSON reader or by the facts' own check, whichever comes first: one line naming the file."""
    text = json.dumps([{**THIN, "screen_lock_minutes": 12345}]).replace("12345", literal)
    line = one_line(check("--facts", str(facts_file(tmp_path, text))))
    assert "facts.json" in line and ("not a finite number" in line or "is not a number JSON allows" in line)


def test_facts_of_a_declared_host_are_judged(tmp_path: Path) -> None:
    result = check("--facts", str(facts_file(tmp_path, [{**THIN, "screen_lock_minutes": 45}])), "--format", "json")
    (f,) = findings_of(result, "DSK-006")
    assert f["status"] == "fail" and f["council"] == "newham"


# --------------------------------------------------------------------------- --history

GOOD = {"date": "2026-11-01", "framework_version": "2026.11.0", "sources": ["assets"],
        "scores": {"newham": 0.5}, "by_area": {"newham": {"network": 0.5}}}


@pytest.mark.parametrize(("line", "expected"), [
    (json.dumps({**GOOD, "scores": {"newham": True}}), "h.jsonl:2: scores.newham: True is not a score between 0 and 1"),
    (json.dumps(GOOD).replace('"newham": 0.5}, "by', '"newham": NaN}, "by'),
     "h.jsonl:2: scores.newham: nan is not a score between 0 and 1"),
    (json.dumps(GOOD).replace('"newham": 0.5}, "by', '"newham": Infinity}, "by'),
     "h.jsonl:2: scores.newham: inf is not a score between 0 and 1"),
    (json.dumps(GOOD).replace('"network": 0.5', '"network": NaN'),
     "h.jsonl:2: by_area.newham.network: nan is not a score between 0 and 1"),
    (json.dumps({**GOOD, "by_area": {"newham": {"network": "high"}}}),
     "h.jsonl:2: by_area.newham.network: 'high' is not a score between 0 and 1"),
    (json.dumps({**GOOD, "date": 20261101}), "h.jsonl:2: date: 20261101 is not a date (YYYY-MM-DD)"),
    (json.dumps({**GOOD, "date": "10000-01-01"}), "h.jsonl:2: date: '10000-01-01' is not a date (YYYY-MM-DD)"),
    (json.dumps({**GOOD, "date": "2026-13-01"}), "h.jsonl:2: date: '2026-13-01' is not a date (YYYY-MM-DD)"),
    (json.dumps({**GOOD, "sources": [1]}), "h.jsonl:2: sources: expected a list of strings"),
    (json.dumps({**GOOD, "framework_version": ["x"]}), "h.jsonl:2: framework_version: expected a string"),
    ("[" * 100_000, "h.jsonl:2: nested too deeply to be a history line"),
])
def test_bad_history_values_are_one_line(line: str, expected: str, tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    history.write_text(json.dumps(GOOD) + "\n" + line + "\n", encoding="utf-8")
    before = history.read_bytes()
    result = check("--history", str(history), "--format", "json", "-o", str(tmp_path / "r.json"))
    assert one_line(result).endswith(expected)
    assert history.read_bytes() == before


def test_history_dates_at_either_end_of_the_calendar_are_plotted(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    lines = [{**GOOD, "date": "0001-01-01"}, {**GOOD, "date": "9999-12-31"}]
    history.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    result = check("--history", str(history), "--format", "html", "-o", str(tmp_path / "r.html"))
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Convergence over time" in (tmp_path / "r.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- dates and chart text


@pytest.mark.parametrize("command", [["check", "--format", "html"], ["roadmap", "--format", "html"]])
def test_a_today_the_roadmap_cannot_plan_from_is_one_line(command: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, [*command, "--root", str(REPO), "--today", "9999-12-31", "-o", str(tmp_path / "x")])
    assert one_line(result) == ("--today: 9999-12-31 is after 9997-09-30, the last date the roadmap can plan from "
                                "(its quarters end in 9999)")
    assert not (tmp_path / "x").exists()


def test_the_last_plannable_day_still_renders(tmp_path: Path) -> None:
    result = runner.invoke(app, ["roadmap", "--root", str(REPO), "--today", "9997-09-30", "--format", "html",
                                 "-o", str(tmp_path / "r.html")])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "9997 Q3" in (tmp_path / "r.html").read_text(encoding="utf-8")


def test_a_contract_ending_past_the_horizon_is_one_line_naming_the_file(repo_copy: Path) -> None:
    council = repo_copy / "inventories" / "newham" / "council.yml"
    council.write_text(council.read_text(encoding="utf-8").replace("end: 2027-09-30", "end: 9999-12-31", 1),
                       encoding="utf-8")
    result = runner.invoke(app, ["roadmap", "--root", str(repo_copy), "--today", TODAY])
    line = one_line(result)
    assert line.startswith("inventories/newham/council.yml:")
    assert line.endswith("contracts[0].end: 9999-12-31 is after 9997-09-30, the last date the roadmap can plan "
                         "from (its quarters end in 9999)")


@pytest.mark.parametrize("name", ["$x$", "$", "$_$", "$^$", "$\\foo$", "a_b^c\\d"])
def test_mathtext_characters_in_a_name_are_drawn_as_written(name: str) -> None:
    bars = domain_chart({name: {name: 0.5}}, [name])
    trend = trend_chart({name: [(dt.date(2026, 1, 1), 0.5), (dt.date(2026, 2, 1), 0.6)]})
    for svg in (bars, trend):
        assert name.replace("&", "&amp;") in svg


# --------------------------------------------------------------------------- typed accessors


def test_typed_accessors() -> None:
    inputs = {"a": {"b": [1, 2]}, "n": 3, "flag": True, "nan": math.nan, "s": "x", "none": None}
    assert mapping(inputs, "a") == {"b": [1, 2]} and mapping(inputs, "missing") == {} and mapping(inputs, "none") == {}
    assert items(inputs, "a.b") == [1, 2] and items(inputs, "a.c") == []
    assert number(inputs, "n") == 3.0 and number(inputs, "missing") is None
    for path, expected in [("flag", "property flag is a boolean (true), expected a finite number"),
                           ("nan", "property nan is NaN, expected a finite number"),
                           ("s", "property s is a string, expected a finite number"),
                           ("a", "property a is an object, expected a finite number")]:
        with pytest.raises(WrongType, match=expected.replace("(", r"\(").replace(")", r"\)")):
            number(inputs, path)
    with pytest.raises(WrongType, match="property n is a number, expected an object"):
        mapping(inputs, "n.deeper")
    with pytest.raises(WrongType, match=r"property a\.b is a list, expected an object"):
        mapping(inputs, "a.b")


# --------------------------------------------------------------------------- typed reads outside the rules

NSG = "azure-native:network:NetworkSecurityGroup"


def _nsg(name: str, rules: Any) -> Any:
    from estate.plan import PlannedResource

    return PlannedResource(urn=f"urn:pulumi:newham::shared-estate::{NSG}::{name}", type=NSG, name=name,
                           stack="newham", parent=None,
                           inputs={"networkSecurityGroupName": name, "resourceGroupName": "rg",
                                   "location": "uksouth", "securityRules": rules})


RULE = {"name": "ssh", "priority": 200, "direction": "Inbound", "access": "Allow", "protocol": "Tcp",
        "sourceAddressPrefix": "10.0.0.0/24", "destinationAddressPrefix": "*", "sourcePortRange": "*"}


@pytest.mark.parametrize(("rules", "path", "expected"), [
    ([{**RULE, "destinationPortRanges": 22}], "$.properties.securityRules[0].properties.destinationPortRanges",
     "property $.properties.securityRules[0].properties.destinationPortRanges is a number, expected a list"),
    (True, "$.properties.securityRules",
     "property $.properties.securityRules is a boolean (true), expected a list"),
])
def test_a_wrong_type_in_an_nsg_is_a_contract_finding_and_the_others_are_still_judged(
        rules: Any, path: str, expected: str) -> None:
    from estate.contract.rules import RULES, PlanIndex

    bad = _nsg("nsg-bad", rules)
    other = _nsg("nsg-other", [{**RULE, "destinationPortRange": "99999"}])
    index = PlanIndex([bad, other], dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    found = [f for rule in RULES for f in rule.check(index)]
    assert any(f.resource == bad.urn and f.property == path and f.message == expected for f in found), found
    assert any(f.resource == other.urn and "'99999'" in f.message for f in found), found


def test_a_port_that_is_no_finite_number_is_a_value_error() -> None:
    from estate.controls.network.flows import port_ranges

    assert port_ranges(["443", "5060-5061", "*", "22.0"]) == [(443, 443), (5060, 5061), (1, 65535), (22, 22)]
    for bad in ("inf", "-inf", "nan", "1e309"):
        with pytest.raises(ValueError):
            port_ranges([bad])


# --------------------------------------------------------------------------- the sweep over the catalogue

# Values of the wrong JSON type (or no number at all) that replace each property in turn: a list, an object, a
# string (one a careless float() reads as infinity), a boolean, NaN and null.
WRONG: tuple[Any, ...] = ([], {}, "inf", True, math.nan, None)




# Rules whose resources are also read by code outside the rules and the engine (the platform contract, the
# reachability model, the flow-matrix helpers), where a wrong type still escapes: (rule, file the exception
# comes from). Each is reported to the owner of that file; the sweep fails when the list is not exactly what
# still escapes, so a fix there must shorten it.
ESCAPES_ELSEWHERE: set[tuple[str, str]] = set()
MINE = ("estate/controls/", "estate/compliance/engine.py")

CLOUD_RULES = [rid for rid, cls in registry().items()
               if (cls.implements("resource") or cls.implements("stack") or cls.implements("estate"))]


def _sweep(estate: Estate, rule_id: str) -> tuple[int, list[tuple[str, str, str]], list[str]]:
    """Judge the rule's passing fixture with every property of every resource replaced by each WRONG value: (how
    many judgements, what escaped as (file, path, exception), what passed with a non-finite number)."""
    rule = registry()[rule_id]()
    fixture = read(fixture_path(rule_id))
    count, escaped, passed_nan = 0, [], []
    for name in ("pass",):
        case = fixture[name]
        if "resources" not in case:
            continue
        c = load_case(estate, case, BASELINE)
        ctx = Context(c.estate, BASELINE["today"])
        pool: list[Resource] = list(c.resources or [])
        for i, res in enumerate(pool):
            for path in wire.paths(dict(res.inputs)):
                for bad in WRONG:
                    changed = dataclasses.replace(res, inputs=wire.replace(dict(res.inputs), path, bad))
                    group: list[CloudResource] = [*pool[:i], changed, *pool[i + 1:]]
                    count += 1
                    try:
                        found = judge_resource(rule, changed, ctx) + judge_stack(rule, group, ctx)
                        found += judge_estate(rule, group, ctx)
                    except Exception as exc:  # what the test is for: nothing may escape
                        frame = traceback.extract_tb(exc.__traceback__)[-1]
                        where = str(Path(frame.filename).resolve().relative_to(REPO))
                        escaped.append((where, str(path), f"{type(exc).__name__}: {exc}"))
                        continue
                    if isinstance(bad, float) and any(f.status == "pass" and f.resource == changed.urn
                                                      for f in found):
                        passed_nan.append(f"{path}={bad}")
    return count, escaped, passed_nan


@pytest.mark.parametrize("rule_id", CLOUD_RULES)
def test_no_wrong_type_escapes_a_rule(rule_id: str, estate: Estate) -> None:
    count, escaped, passed_nan = _sweep(estate, rule_id)
    assert count > 0, f"{rule_id}: the fixtures hold no resources to sweep"
    assert passed_nan == [], f"{rule_id}: a resource holding a non-finite number passed: {passed_nan[:5]}"
    outside = {(rule_id, where) for where, _, _ in escaped}
    known = {k for k in ESCAPES_ELSEWHERE if k[0] == rule_id}
    assert not [e for e in escaped if e[0].startswith(MINE)], escaped[:5]
    assert outside == known, f"{rule_id}: escaped {escaped[:5]}"


def test_the_sweep_covers_the_catalogue() -> None:
    assert len(CLOUD_RULES) >= 35
    assert all(fixture_path(rid).exists() for rid in CLOUD_RULES)


def test_a_nan_in_a_planned_resource_fails_every_rule_that_judges_it(estate: Estate) -> None:
    case = read(fixture_path("DCN-011"))["pass"]
    c = load_case(estate, case, BASELINE)
    (res,) = c.resources or []
    bad = dataclasses.replace(res, inputs={**res.inputs, "location": "uksouth", "tags": {"n": math.nan}})
    report = evaluate(c.estate, resources=[bad], councils=c.councils, today=BASELINE["today"], assets=False)
    judged = [f for f in report.findings if f.resource == res.urn]
    assert judged and all(f.status == "fail" and "property tags.n is NaN" in f.message for f in judged)
