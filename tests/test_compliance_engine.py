"""The engine on the example estate: scores, exemptions that expire, exit codes, host facts, filters."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from estate.compliance import HostFacts, evaluate
from estate.compliance.engine import score
from estate.compliance.findings import Finding
from estate.controls.base import Resource
from estate.errors import EstateError
from estate.loader import Estate
from estate.models import Council, Exemption

TODAY = dt.date(2026, 11, 22)


def _finding(rule: str, area: str, status: str) -> Finding:
    return Finding(rule, "t", "high", "mandatory", "1.1", "CE: x", area, "c", "asset", "r", status,  # type: ignore[arg-type]
                   "m", "f")


def test_each_example_council_gets_a_different_score(estate: Estate) -> None:
    report = evaluate(estate, today=TODAY)
    scores = {k: r.score for k, r in report.councils.items()}
    assert set(scores) == set(estate.councils)
    assert len(set(scores.values())) == len(scores)
    # nearly converged > half way > just joining, as the inventories describe them
    assert scores["havering"] > scores["newham"] > scores["waltham-forest"]


def test_every_failure_is_explained_by_its_rule_and_fix(estate: Estate) -> None:
    report = evaluate(estate, today=TODAY)
    for f in report.findings:
        assert f.message and f.fix and f.rule_id and f.control and f.clause
        if f.status != "pass":
            assert f.resource


def test_legacy_estate_fails_mandatory_rules_so_the_exit_code_is_1(estate: Estate) -> None:
    report = evaluate(estate, today=TODAY)
    assert report.exit_code == 1
    assert report.councils["waltham-forest"].blocking
    alone = evaluate(estate, councils=["havering"], today=TODAY)
    assert alone.exit_code == 0
    assert list(alone.councils) == ["havering"]


def test_exemption_is_exempt_before_expiry_and_expired_from_its_date(estate: Estate) -> None:
    # newham's DCN-004 exemption for nwm-file01 expires on 2026-06-30
    before = evaluate(estate, councils=["newham"], today=dt.date(2026, 6, 29), rules=["DCN-004"])
    on = evaluate(estate, councils=["newham"], today=dt.date(2026, 6, 30), rules=["DCN-004"])
    f_before = next(f for f in before.findings if f.resource == "nwm-file01")
    f_on = next(f for f in on.findings if f.resource == "nwm-file01")
    assert f_before.status == "exempt" and not f_before.failing
    assert f_on.status == "expired" and f_on.blocking
    assert "expired on 2026-06-30" in f_on.message
    assert f_before.exemption is not None and f_before.exemption.contract == "NWM-C02"


def test_exempt_is_not_a_pass_for_the_score_nor_a_failure_for_the_exit_code(estate: Estate) -> None:
    report = evaluate(estate, councils=["havering"], today=TODAY)
    result = report.councils["havering"]
    assert result.count("exempt") == 1 and result.score < 1
    assert report.exit_code == 0


def test_scope_globs_match_the_short_name_of_a_urn(estate: Estate) -> None:
    rec = estate.council("newham")
    ex = Exemption(rule="DCN-001", scope="rg-*", reason="x", contract="NWM-C02", expires=dt.date(2027, 1, 1),
                   owner="Head of ICT, Newham", approver="Chair, security board")
    council = Council.model_validate({**rec.council.model_dump(), "exemptions": [ex.model_dump()]})
    e2 = dataclasses.replace(estate, councils={**estate.councils, "newham": dataclasses.replace(rec, council=council)})
    rg, vnet = "azure-native:resources:ResourceGroup", "azure-native:network:VirtualNetwork"
    where = {"location": "westeurope"}
    res = [Resource(f"urn:pulumi:newham::p::{rg}::rg-x", rg, "rg-x", "newham", None, where),
           Resource(f"urn:pulumi:newham::p::{vnet}::vnet-x", vnet, "vnet-x", "newham", None, where)]
    report = evaluate(e2, resources=res, councils=["newham"], today=TODAY, rules=["DCN-001"], assets=False)
    statuses = {f.short_resource: f.status for f in report.findings}
    assert statuses == {"rg-x": "exempt", "vnet-x": "fail"}


def test_advisory_failures_do_not_fail_the_run(estate: Estate) -> None:
    facts = HostFacts(host="h1", council="newham", role="thin_client", reachable=True, rdp_client="remmina")
    report = evaluate(estate, hosts=[facts], councils=["newham"], today=TODAY, rules=["DSK-010"], assets=False)
    (f,) = report.findings
    assert f.status == "fail" and f.enforcement == "advisory" and not f.blocking
    assert report.exit_code == 0


def test_an_unreachable_host_fails_every_rule_that_applies_to_it(estate: Estate) -> None:
    facts = HostFacts(host="tc9", council="newham", role="thin_client", reachable=False)
    report = evaluate(estate, hosts=[facts], councils=["newham"], today=TODAY, assets=False)
    assert report.findings and all(f.status == "fail" and "did not answer" in f.message for f in report.findings)
    assert {f.area for f in report.findings} == {"desktop", "identity"}


def test_host_findings_count_towards_the_area_of_the_hosts_role(estate: Estate) -> None:
    router = HostFacts(host="r1", council="shared", role="router", reachable=True, nft_input_policy="accept")
    report = evaluate(estate, hosts=[router], today=TODAY, rules=["SEC-005"], assets=False)
    (f,) = report.findings
    assert (f.council, f.area, f.status) == ("shared", "network", "fail")


def test_unknown_council_is_an_input_error(estate: Estate) -> None:
    with pytest.raises(EstateError, match="unknown council 'camden'"):
        evaluate(estate, councils=["camden"], today=TODAY)
    with pytest.raises(EstateError, match="unknown council"):
        evaluate(estate, hosts=[HostFacts(host="x", council="camden", role="router", reachable=True)], today=TODAY)


def test_score_counts_a_rule_once_per_area_and_needs_all_its_findings_to_pass() -> None:
    findings = [_finding("A-001", "network", "pass"), _finding("A-001", "network", "fail"),
                _finding("A-002", "network", "pass"), _finding("A-002", "desktop", "exempt"),
                _finding("A-003", "desktop", "pass")]
    overall, areas, total, passing = score(findings)
    assert (total, passing) == (4, 2)
    assert overall == 0.5
    assert areas == {"desktop": 0.5, "network": 0.5}
    assert score([]) == (1.0, {}, 0, 0)
