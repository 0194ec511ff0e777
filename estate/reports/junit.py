"""The report as JUnit XML: a test suite per council, a test case per rule and resource.

`fail` and `expired` findings are failures (type = the rule id), `exempt` ones are skipped with the
exemption's reason, passes are plain test cases; an exemption that matches nothing its rule judged is a failure
too (type EXEMPTION-UNMATCHED, named by its file and line). CI systems read this to show each finding.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from estate.compliance.findings import Report
from estate.render_safe import xml_text


def render_junit(report: Report) -> str:
    root = ET.Element("testsuites", name="estate check")
    total = failures = skipped = 0
    for key, result in report.councils.items():
        stale = result.errors
        suite = ET.SubElement(root, "testsuite", name=key, timestamp=f"{report.today.isoformat()}T00:00:00",
                              tests=str(len(result.findings) + len(stale)),
                              failures=str(len(result.failures) + len(stale)),
                              errors="0", skipped=str(result.count("exempt")))
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="score", value=f"{result.score:.4f}")
        ET.SubElement(props, "property", name="framework_version", value=report.framework_version)
        for area, value in result.by_area.items():
            ET.SubElement(props, "property", name=f"score.{area}", value=f"{value:.4f}")
        for f in result.findings:
            case = ET.SubElement(suite, "testcase", classname=f"{key}.{f.rule_id}", name=f.resource, time="0")
            if f.failing:
                failure = ET.SubElement(case, "failure", type=f.rule_id,
                                        message=f"[{f.enforcement}] {f.title}: {f.message}")
                failure.text = (f"{f.status}: {f.message}\nfix: {f.fix}\ncontrol {f.control} ({f.clause}), "
                                f"severity {f.severity}")
            elif f.status == "exempt":
                ET.SubElement(case, "skipped", message=f.message)
        for n in stale:
            case = ET.SubElement(suite, "testcase", classname=f"{key}.exemptions", name=f"{n.file}:{n.line}", time="0")
            ET.SubElement(case, "failure", type="EXEMPTION-UNMATCHED", message=n.message).text = n.message
        total += len(result.findings) + len(stale)
        failures += len(result.failures) + len(stale)
        skipped += result.count("exempt")
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("skipped", str(skipped))
    ET.indent(root)
    # ElementTree escapes markup but writes control characters and lone surrogates as they are: XML
    # cannot hold them even escaped, so they are replaced (estate.render_safe).
    return '<?xml version="1.0" encoding="utf-8"?>\n' + xml_text(ET.tostring(root, encoding="unicode")) + "\n"
