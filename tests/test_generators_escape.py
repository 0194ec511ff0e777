"""Free text never becomes configuration or markup: every generator escapes (or refuses) what its
syntax cannot carry. Reports (JUnit, SARIF, HTML) stay well-formed for any text, and the SARIF log
names no absolute path of the machine; the Ansible roles' templates, rendered with Ansible's own
templating and hostile values, keep each value inside its string or token."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from estate.compliance import evaluate
from estate.compliance.findings import CouncilResult, Finding, Report
from estate.loader import Estate, load_estate
from estate.reports import render
from estate.reports.html import HtmlReport

REPO = Path(__file__).resolve().parent.parent
TODAY = dt.date(2026, 11, 22)
# Every C0 control character, DEL, markup, a CDATA end, a script end and a lone surrogate.
HOSTILE = ("".join(chr(c) for c in range(0x20)) + "\x7f <>&\"' ]]> </script><script>alert(1)</script> "
           "\ud800 \udfff \ufffe end")


def _finding(council: str, status: str, n: int) -> Finding:
    return Finding(rule_id="NET-003", title=f"title {HOSTILE}", severity="high", enforcement="mandatory",
                   control="3.1", clause=f"CE: {HOSTILE}", area="network", council=council, kind="cloud",
                   resource=f"urn:pulumi:x::y::{HOSTILE}{n}", status=status,  # type: ignore[arg-type]
                   message=f"message {HOSTILE}", fix=f"fix {HOSTILE}")


def hostile_report(council: str = f"c{HOSTILE}") -> Report:
    findings = [_finding(council, s, i) for i, s in enumerate(("fail", "pass", "expired"))]
    result = CouncilResult(council=council, score=0.5, findings=findings, by_area={"network": 0.5},
                           rules_applicable=2, rules_passing=1)
    return Report(framework_version=f"2026.11 {HOSTILE}", today=TODAY, sources=("assets", f"state:{HOSTILE}"),
                  councils={council: result})


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return []


# --------------------------------------------------------------------------- reports


def test_junit_is_well_formed_xml_for_any_text(estate: Estate) -> None:
    text = render(hostile_report(), "junit", estate=estate)
    root = ET.fromstring(text.encode("utf-8"))  # encodes: no lone surrogate left
    failures = root.findall(".//failure")
    assert len(failures) == 2
    message = failures[0].get("message") or ""
    assert "</script><script>alert(1)</script>" in message and "]]>" in message and "<>&\"'" in message
    assert "\x00" not in text and "\x1b" not in text and "\ud800" not in text
    assert "\t" in message and "\n" in message  # XML characters are kept, as character references


def test_sarif_is_json_for_any_text(estate: Estate) -> None:
    text = render(hostile_report(), "sarif", estate=estate)
    text.encode("utf-8")
    doc = json.loads(text)
    messages = [r["message"]["text"] for r in doc["runs"][0]["results"]]
    assert len(messages) == 3
    assert all("</script><script>alert(1)</script>" in m and "\x00\x01" in m for m in messages)
    assert not any("\ud800" in s for s in _strings(doc))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def test_html_escapes_any_text(estate: Estate) -> None:
    text = HtmlReport(hostile_report(), estate, providers=False).render()
    text.encode("utf-8")
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert "script" not in parser.tags
    assert "<script" not in text and "</script" not in text
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert not any(chr(c) in text for c in range(0x20) if chr(c) not in "\t\n\r")


def test_sarif_names_no_absolute_path(repo_copy: Path) -> None:
    estate = load_estate(repo_copy)
    text = render(evaluate(estate, today=TODAY), "sarif", estate=estate)
    doc = json.loads(text)
    strings = _strings(doc)
    assert not [s for s in strings if s.startswith("/") or s.startswith("file:")]
    assert str(repo_copy) not in text and str(repo_copy.resolve()) not in text
    locations = [loc["physicalLocation"]["artifactLocation"] for r in doc["runs"][0]["results"]
                 for loc in r["locations"]]
    assert {loc["uriBaseId"] for loc in locations} == {"%SRCROOT%"}
    assert {loc["uri"] for loc in locations} <= {"framework.yaml", *(f"inventories/{k}/council.yml"
                                                                      for k in estate.councils)}
    assert "uri" not in doc["runs"][0]["originalUriBaseIds"]["%SRCROOT%"]


def test_sarif_names_a_linked_council_by_its_place_in_the_repo(repo_copy: Path,
                                                               tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "newham"
    (repo_copy / "inventories" / "newham").rename(elsewhere)
    (repo_copy / "inventories" / "newham").symlink_to(elsewhere)
    estate = load_estate(repo_copy)
    text = render(evaluate(estate, today=TODAY), "sarif", estate=estate)
    assert str(elsewhere.parent) not in text
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for r in json.loads(text)["runs"][0]["results"]
            for loc in r["locations"] if r["properties"]["council"] == "newham"}
    assert uris == {"inventories/newham/council.yml"}


# --------------------------------------------------------------------------- role templates

# A value that tries to end its string or line and add configuration of its own.
INJECT = "x\"'; }\n*.* /etc/passwd\n# \\ $(touch /tmp/pwned) `id` {evil}\x00\x1b"


def _trusted(node: Any) -> Any:
    from ansible.template import trust_as_template  # type: ignore[import-untyped]

    if isinstance(node, str):
        return trust_as_template(node)
    if isinstance(node, dict):
        return {k: _trusted(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_trusted(v) for v in node]
    return node


def render_template(role: str, name: str, **values: Any) -> str:
    """roles/<role>/templates/<name> rendered by Ansible's own templating (its filters: to_json, quote,
    regex_replace) with the role's defaults and `values` over them."""
    import yaml
    from ansible.parsing.dataloader import DataLoader  # type: ignore[import-untyped]
    from ansible.template import Templar

    defaults = yaml.safe_load((REPO / "roles" / role / "defaults" / "main.yml").read_text(encoding="utf-8")) or {}
    variables = {**_trusted(defaults), "ansible_managed": "Ansible managed", **values}
    source = (REPO / "roles" / role / "templates" / name).read_text(encoding="utf-8")
    templar = Templar(loader=DataLoader(), variables=variables)
    return str(templar.template(_trusted(source), escape_backslashes=False))


def _no_injected_line(text: str) -> None:
    lines = text.splitlines()
    assert not any(line.lstrip().startswith(("*.*", "/etc/passwd")) for line in lines), text
    assert "\x00" not in text and "\x1b" not in text


def test_kea_json_holds_any_value() -> None:
    vlans = [{"name": INJECT, "vlan_id": 10, "subnet": INJECT, "gateway": INJECT, "pool_start": INJECT,
              "pool_end": "10.0.0.9"}]
    text = render_template("dc_services", "kea-dhcp4.conf.j2", dc_services_domain=INJECT,
                           dc_services_address=INJECT, dc_services_vlans=vlans)
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    doc = json.loads(body)  # Kea reads JSON with comments: the rest is strict JSON
    dhcp = doc["Dhcp4"]
    assert set(dhcp) == {"interfaces-config", "lease-database", "valid-lifetime", "option-data", "subnet4", "loggers"}
    assert {o["name"]: o["data"] for o in dhcp["option-data"]}["domain-name"] == INJECT
    assert dhcp["subnet4"][0]["user-context"] == {"vlan": INJECT}
    assert dhcp["subnet4"][0]["pool" + "s"] == [{"pool": f"{INJECT} - 10.0.0.9"}]


def test_unbound_names_keep_to_dns_characters() -> None:
    records = [{"name": INJECT, "address": "10.0.0.5\nlocal-zone: evil. static"}]
    text = render_template("dc_services", "unbound-estate.conf.j2", dc_services_domain=INJECT,
                           dc_services_records=records, dc_services_allowed_networks=[INJECT],
                           dc_services_dns_forwarders=[INJECT])
    _no_injected_line(text)
    body = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    keys = [line.split(":", 1)[0] for line in body]
    assert keys.count("local-zone") == 1 and keys.count("local-data") == 1 and keys.count("local-data-ptr") == 1
    for line in body:
        if '"' in line:
            assert line.count('"') == 2 and (line.endswith('"') or line.endswith('" static')), line
    name, domain = re.sub("[^A-Za-z0-9-]", "", INJECT), re.sub("[^A-Za-z0-9.-]", "", INJECT)
    assert f'local-data: "{name}.{domain}. IN A 10.0.0.5."' in body


def test_rt_site_config_strings_stay_perl_strings(tmp_path: Path) -> None:
    import shutil
    import subprocess

    hostile = "it's \\' ); system('id'); ('"
    sla = [{"priority": hostile, "response_hours": 1, "resolution_hours": 4}]
    text = render_template("helpdesk", "RT_SiteConfig-estate.pm.j2", helpdesk_rt_name=hostile,
                           helpdesk_organization=INJECT, helpdesk_web_domain=hostile, helpdesk_web_path=hostile,
                           helpdesk_sla=sla, helpdesk_sla_default="")
    perl = shutil.which("perl")
    assert perl is not None
    # Run it with a Set that records every string it is given: the values come back exactly as given.
    script = tmp_path / "check.pl"
    script.write_text("my @got;\nsub Set { shift; for my $v (@_) { push @got, ref $v eq 'HASH' ? keys %$v : $v } }\n"
                      + text + "\nprint join('<<SEP>>', grep { defined && !ref } @got);\n", encoding="utf-8")
    values = subprocess.run([perl, str(script)], capture_output=True, text=True, check=True).stdout.split("<<SEP>>")
    assert {hostile, INJECT, f"https://{hostile}"} <= set(values)
    assert values.count(hostile) == 5  # rtname, WebDomain, WebPath, the default SLA and the level's name


def test_kiosk_session_passes_each_value_as_one_word(tmp_path: Path) -> None:
    import shutil
    import subprocess

    text = render_template("thin_client", "kiosk-session.j2", thin_client_rdp_command=INJECT,
                           thin_client_broker="b; touch /tmp/pwned", thin_client_kiosk_user=INJECT)
    _no_injected_line(text)
    sh = shutil.which("sh")
    assert sh is not None
    script = tmp_path / "kiosk"
    script.write_text(text, encoding="utf-8")
    subprocess.run([sh, "-n", str(script)], check=True)
    client = text[text.index("while true; do"):].split("\n", 1)[1].split("sleep 2")[0]
    words = shlex.split(client.replace("\\\n", " "))
    assert words[:3] == ["x./etc/passwdtouch/tmp/pwnedidevil", "/v:btouchtmppwned", "/gateway:g:btouchtmppwned:443"]
    assert words[3:] == ["/f", "/cert:tofu", "/sec:nla", "/dynamic-resolution", "/sound", "/microphone", "-clipboard",
                         "-drives"]


@pytest.mark.parametrize(("role", "template", "values"), [
    ("baseline", "rsyslog-forward.conf.j2", {"baseline_log_collector": INJECT}),
    ("baseline", "chrony.conf.j2", {"baseline_ntp_servers": [INJECT]}),
    ("baseline", "sshd_hardening.conf.j2", {"baseline_ssh_permit_root_login": INJECT,
                                            "baseline_ssh_options": {"MaxStartups": INJECT}}),
    ("baseline", "52estate-unattended-upgrades.j2", {"baseline_updates_time": INJECT}),
    ("baseline", "apt-daily-upgrade-window.conf.j2", {"baseline_updates_time": INJECT}),
    ("baseline", "estate-blocked-modules.conf.j2", {"baseline_block_kernel_modules": [INJECT]}),
    ("baseline", "faillock.conf.j2", {"baseline_framework_version": INJECT}),
    ("dc_services", "chrony-server.conf.j2", {"dc_services_allowed_networks": [INJECT]}),
    ("helpdesk", "nginx-rt.conf.j2", {"helpdesk_web_domain": INJECT, "helpdesk_web_path": INJECT}),
    ("thin_client", "nodm.j2", {"thin_client_kiosk_user": INJECT}),
    ("thin_client", "sshd-kiosk.conf.j2", {"thin_client_kiosk_user": INJECT}),
])
def test_a_value_adds_no_line(role: str, template: str, values: dict[str, Any]) -> None:
    def benign(node: Any) -> Any:
        if isinstance(node, dict):
            return {benign(k): benign(v) for k, v in node.items()}
        if isinstance(node, list):
            return [benign(v) for v in node]
        return "benign" if node == INJECT else node

    common = {"baseline_block_kernel_modules": ["x"]}
    plain = render_template(role, template, **{**common, **benign(values)}).splitlines()
    text = render_template(role, template, **{**common, **values})
    assert "\x00" not in text and "\x1b" not in text and "$(" not in text and "`" not in text
    lines = text.splitlines()
    # The same lines as with a plain value, each starting with the same word: the value stayed in its place.
    assert len(lines) == len(plain)
    assert [re.split("[ =]", line, maxsplit=1)[0] for line in lines] == [re.split("[ =]", line, maxsplit=1)[0]
                                                                         for line in plain]
    assert sum(line.count('"') for line in lines) == sum(line.count('"') for line in plain)


def test_rt_state_json_holds_any_value() -> None:
    councils = [{"key": INJECT, "name": INJECT, "agents": [{"name": INJECT, "password": INJECT, "real_name": INJECT}]}]
    text = render_template("helpdesk", "estate-rt-state.json.j2", helpdesk_councils=councils,
                           helpdesk_categories=[INJECT], helpdesk_rest_password=INJECT, helpdesk_organization=INJECT)
    doc = json.loads(text)
    assert doc["councils"][0]["name"] == INJECT and doc["categories"] == [INJECT]
    assert doc["councils"][0]["queue"] == {"name": INJECT, "description": f"{INJECT} service desk queue"}


LOG_COLLECTOR_GOOD = {"log_collector_directory": "/var/log/remote", "log_collector_quarantine": "unknown-senders",
                      "log_collector_allowed_senders": ["10.64.0.0/11", "fd00::/8"]}


@pytest.mark.parametrize(("name", "value", "passes"), [
    ("log_collector_directory", "/var/log/remote", True),
    ("log_collector_directory", "/var/log/remote\n*.* /etc/passwd", False),
    ("log_collector_directory", "/var/log/re mote", False),
    ("log_collector_quarantine", "unknown\"senders", False),
    ("log_collector_allowed_senders", ["10.0.0.0/8\n$ModLoad imfile"], False),
    ("log_collector_allowed_senders", ["10.0.0.0/8, 0.0.0.0/0"], False),
])
def test_log_collector_refuses_values_its_templates_cannot_hold(name: str, value: Any, passes: bool,
                                                                tmp_path: Path) -> None:
    """The log collector's own paths and sender list reach rsyslog, logrotate and systemd syntax, which have no
    escape: the role's first task refuses a value that would add a line or a word there, before any change."""
    import subprocess
    import sys

    import yaml

    # the role's one entry point imports collector.yml (its control's tag and toggle), whose first task is the guard
    main = yaml.safe_load((REPO / "roles/log_collector/tasks/main.yml").read_text(encoding="utf-8"))
    assert main[0]["ansible.builtin.import_tasks"] == "collector.yml"
    tasks = yaml.safe_load((REPO / "roles/log_collector/tasks/collector.yml").read_text(encoding="utf-8"))
    guard = next(t for t in tasks if "hold no syntax of their own" in t["name"])
    assert tasks.index(guard) == 0
    (tmp_path / "play.yml").write_text(yaml.safe_dump(
        [{"hosts": "localhost", "gather_facts": False, "tasks": [guard]}]), encoding="utf-8")
    (tmp_path / "vars.json").write_text(json.dumps({**LOG_COLLECTOR_GOOD, name: value}), encoding="utf-8")
    run = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                          "play.yml", "-e", "@vars.json"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, check=False)
    assert (run.returncode == 0) is passes, run.stdout[-2000:]
