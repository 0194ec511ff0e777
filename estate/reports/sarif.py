"""The report as SARIF 2.1.0 (code scanning): every rule in the tool's driver, every finding a result.

Failures of mandatory controls are errors, of advisory ones warnings; an exempt finding is a note
with an accepted external suppression (the exemption's reason and contract); a pass is a result of
kind "pass". Asset findings point at the line of the asset in the council's council.yml; cloud and
host findings name the resource as a logical location and point at the council's inventory. What a run says of
the councils' exemptions points at the exemption's line: one that expires within 30 days is a note
(EXEMPTION-EXPIRING), one that matches nothing its rule judged an error (EXEMPTION-UNMATCHED).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from estate.compliance.findings import FINGERPRINT_VERSION, Finding, Notice, Report
from estate.controls.base import registry
from estate.loader import COUNCIL_FILE, INVENTORIES
from estate.render_safe import unicode_text

if TYPE_CHECKING:
    from estate.loader import CouncilRecord, Estate

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
# the rules of what a run says about the exemptions themselves (estate.compliance.engine.exemption_notices)
NOTICE_RULES = {
    "warning": ("EXEMPTION-EXPIRING", "note", "An exemption expires within 30 days",
                "Renew the exemption under its contract, or fix what it exempts before it expires."),
    "error": ("EXEMPTION-UNMATCHED", "error", "An exemption matches nothing its rule judged",
              "Remove the exemption, or correct its rule or scope: it hides no finding."),
}


# Locations are relative to the repository root, named by a uriBaseId whose value the consumer supplies:
# the log carries no absolute path of the machine that wrote it. SARIF 2.1.0 s.3.4.4 (uriBaseId) and
# s.3.14.14 (originalUriBaseIds: an entry without "uri" leaves the base to the consumer),
# https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/sarif-v2.1.0-os.html; GitHub code scanning resolves
# relative uris against the checkout (docs.github.com, "SARIF support for code scanning").
SRCROOT = "%SRCROOT%"


def council_uri(record: CouncilRecord) -> str:
    """The council's council.yml as the repository names it, inventories/<key>/council.yml (whatever
    absolute path, or link, it was read through)."""
    return PurePosixPath(INVENTORIES, record.key, COUNCIL_FILE).as_posix()


def asset_line(record: CouncilRecord, resource: str) -> int:
    """The line in council.yml of the asset a finding names (1 when it names none)."""
    assets = record.source.data.get("assets") if isinstance(record.source.data, Mapping) else None
    if not isinstance(assets, Mapping):
        return 1
    for group, items in assets.items():
        if isinstance(items, Mapping):
            if items.get("system") == resource:
                return record.source.line(("assets", group))
            continue
        for i, item in enumerate(items or []):
            if not isinstance(item, Mapping):
                continue
            if item.get("name") == resource or f"{item.get('os')} {item.get('version')}" == resource:
                return record.source.line(("assets", group, i))
    return 1


def _location(f: Finding, estate: Estate) -> dict[str, Any]:
    record = estate.councils.get(f.council)
    if record is not None:
        uri = council_uri(record)
        line = asset_line(record, f.resource) if f.kind == "asset" else 1
    else:
        uri, line = "framework.yaml", 1
    loc: dict[str, Any] = {
        "physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": SRCROOT},
                             "region": {"startLine": max(line, 1)}},
    }
    if f.kind != "asset":
        loc["logicalLocations"] = [{"fullyQualifiedName": f.resource, "name": f.short_resource,
                                    "kind": "resource" if f.kind == "cloud" else "module"}]
    return loc


def _notice(n: Notice, index: Mapping[str, int]) -> dict[str, Any]:
    """A result at the exemption's line in its council.yml."""
    rid, level, _, _ = NOTICE_RULES[n.level]
    uri = PurePosixPath(INVENTORIES, n.council, COUNCIL_FILE).as_posix()
    return {
        "ruleId": rid, "ruleIndex": index[rid], "kind": "fail", "level": level,
        "message": {"text": f"{n.council}: {n.message}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri, "uriBaseId": SRCROOT},
                                            "region": {"startLine": max(n.line, 1)}}}],
        "partialFingerprints": {"estateFinding/v1": hashlib.sha256(
            f"{n.council}|{rid}|{n.rule}|{n.scope}".encode("utf-8", "surrogatepass")).hexdigest()},
        "properties": {"council": n.council, "rule": n.rule, "scope": n.scope},
    }


def render_sarif(report: Report, estate: Estate) -> str:
    rules = registry()
    fw = estate.framework
    index = {rid: i for i, rid in enumerate(rules)}
    descriptors = []
    for rid, cls in rules.items():
        from estate.controls.base import control_at

        control = control_at(fw, cls.control)
        fix = cls().remediation(fw)
        descriptors.append({
            "id": rid,
            "name": cls.__name__,
            "shortDescription": {"text": cls.title},
            "fullDescription": {"text": f"{cls.title}. Framework control {control.id}: {control.title} "
                                        f"({control.clause})."},
            "help": {"text": fix},
            "defaultConfiguration": {"level": "error" if control.enforcement in ("mandatory", "mandatory_on_create")
                                     else "warning"},
            "properties": {"tags": [cls.area, control.clause.split(":", 1)[0], control.enforcement],
                           "security-severity": SECURITY_SEVERITY[cls.severity], "severity": cls.severity,
                           "control": control.id, "clause": control.clause, "kinds": list(cls.kinds())},
        })
    results = []
    for f in report.findings:
        result: dict[str, Any] = {
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id],
            "message": {"text": f"{f.council}: {f.message}" + ("" if f.status == "pass" else f" Fix: {f.fix}")},
            "locations": [_location(f, estate)],
            # SARIF 2.1.0 s.3.27.17 partialFingerprints: the finding's own identity (Finding.fingerprint: rule,
            # council, kind, resource, property path), under its recipe's name and version
            "partialFingerprints": {FINGERPRINT_VERSION: f.fingerprint},
            "properties": {"council": f.council, "status": f.status, "area": f.area, "kind": f.kind,
                           "resource": f.resource, "control": f.control, "clause": f.clause,
                           "enforcement": f.enforcement, "new": f.new, "notEnforced": f.not_enforced},
        }
        if f.status == "pass":
            result["kind"] = "pass"
            result["level"] = "none"
        elif f.status == "exempt" and f.exemption is not None:
            result["kind"] = "fail"
            result["level"] = "note"
            result["suppressions"] = [{
                "kind": "external", "status": "accepted",
                "justification": f"{f.exemption.reason} (contract {f.exemption.contract}, "
                                 f"expires {f.exemption.expires})",
            }]
        else:
            result["kind"] = "fail"
            result["level"] = "error" if f.must_pass else "warning"
        if report.baseline is not None and f.failing:
            # SARIF 2.1.0 s.3.27.24 baselineState: "unchanged" for a failure the baseline (--baseline) holds, "new"
            # for one it does not (https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/sarif-v2.1.0-os.html)
            result["baselineState"] = "unchanged" if f.baselined else "new"
            result["properties"]["baselined"] = f.baselined
        results.append(result)
    for rid, default, title, fix in NOTICE_RULES.values():
        index[rid] = len(descriptors)
        descriptors.append({"id": rid, "name": rid.title().replace("-", ""), "shortDescription": {"text": title},
                            "help": {"text": fix}, "defaultConfiguration": {"level": default},
                            "properties": {"tags": ["exemption"]}})
    results.extend(_notice(n, index) for n in report.notices)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "estate check",
                "fullName": f"shared-estate compliance engine, framework {fw.version}",
                "version": fw.version,
                "semanticVersion": "2026.11.0",
                "rules": descriptors,
            }},
            "originalUriBaseIds": {SRCROOT: {"description": {"text": "The repository's root (framework.yaml)."}}},
            "invocations": [{"executionSuccessful": True, "exitCode": report.exit_code,
                             "properties": {"date": report.today.isoformat(), "sources": list(report.sources)}}],
            "results": results,
            "properties": {"scores": {k: round(r.score, 4) for k, r in report.councils.items()}},
        }],
    }
    add_taxonomies(log)
    # json.dumps escapes control characters; a lone surrogate would not encode as UTF-8 (estate.render_safe).
    return unicode_text(json.dumps(log, indent=2, ensure_ascii=False)) + "\n"


def add_taxonomies(log: Mapping[str, Any]) -> None:
    """The references of the rules' controls as SARIF taxonomies (SARIF 2.1.0: run `taxonomies`, toolComponent `taxa`
    and `supportedTaxonomies`, reportingDescriptor `relationships` to a taxon by toolComponentReference,
    https://docs.oasis-open.org/sarif/sarif/v2.1.0/os/sarif-v2.1.0-os.html): "NCSC CAF" once per CAF version and
    "Cyber Essentials", each holding the indicators or requirements some control cites; each rule relates to the taxa
    its control cites (kind "relevant"). A rule whose control has no home yet relates to none."""
    from estate.controls.references import CAF_VERSIONS, caf, cyber_essentials
    from estate.controls.spec import control_of

    run = log["runs"][0]
    names = [*((f"NCSC CAF {v}", "NCSC CAF", v) for v in CAF_VERSIONS), ("CE", "Cyber Essentials", "3.2")]
    cited: dict[str, list[str]] = {key: [] for key, _, _ in names}
    links: list[tuple[dict[str, Any], str, str]] = []  # (rule descriptor, taxonomy key, taxon id)
    for descriptor in run["tool"]["driver"]["rules"]:
        spec = control_of(descriptor["id"])
        if spec is None:
            continue
        refs = [*((f"NCSC CAF {v}", ref) for v in CAF_VERSIONS for ref in spec.caf.get(v, ())),
                *(("CE", ref) for ref in spec.ce)]
        for key, ref in refs:
            if ref not in cited[key]:
                cited[key].append(ref)
            links.append((descriptor, key, ref))
    taxonomies: list[dict[str, Any]] = []
    for key, name, version in names:
        taxa: list[dict[str, Any]] = []
        for ref in sorted(cited[key]):
            if key == "CE":
                req = cyber_essentials()[ref]
                text, props = req.text, {"theme": req.theme}
            else:
                framework = caf(version)
                if ref in framework.outcomes:
                    text, props = framework.outcomes[ref].title, {"kind": "contributing outcome"}
                else:
                    ind = framework.indicators[ref]
                    text, props = ind.text, {"kind": "indicator", "outcome": ind.outcome, "column": ind.status}
            taxa.append({"id": ref, "shortDescription": {"text": text}, "properties": props})
        organization = "NCSC" if key != "CE" else "NCSC (Cyber Essentials scheme, delivered by IASME)"
        taxonomies.append({"name": name, "version": version, "organization": organization,
                           "shortDescription": {"text": f"{name} {version}: the ids controls cite "
                                                        "(estate/controls/references/)"},
                           "taxa": taxa})
    position = {key: i for i, (key, _, _) in enumerate(names)}
    taxon_index = {key: {t["id"]: j for j, t in enumerate(taxonomies[position[key]]["taxa"])} for key in position}
    for descriptor, key, ref in links:
        descriptor.setdefault("relationships", []).append({
            "target": {"id": ref, "index": taxon_index[key][ref],
                       "toolComponent": {"name": taxonomies[position[key]]["name"], "index": position[key]}},
            "kinds": ["relevant"],
        })
    run["taxonomies"] = taxonomies
    run["tool"]["driver"]["supportedTaxonomies"] = [{"name": t["name"], "index": i} for i, t in enumerate(taxonomies)]
