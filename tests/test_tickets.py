"""`estate tickets sync` against a fake Request Tracker (http.server on localhost) that implements the REST 2 calls
the sync makes (docs.bestpractical.com/rt/5.0.3/RT/REST2.html): token auth, GET queues/all and queue/:name, ticket
search by TicketSQL on a queue and the fingerprint custom field (paged), POST ticket, PUT ticket/:id, POST
ticket/:id/comment. The real RT is the lab test's (tests/test_tenant_lab.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from estate import cli
from estate.compliance.findings import CouncilResult, Finding, Report
from estate.errors import EstateError
from estate.loader import load_estate
from estate.models import Exemption, Framework
from estate.tickets import SUBJECT_MAX, RtClient, endpoint, subject, sync

REPO = Path(__file__).resolve().parent.parent
TOKEN = "1-7-0123456789abcdef0123456789abcdef"
CF = "EstateFingerprint"
NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
cli._register_extensions()


class FakeRT:
    """The state of the fake helpdesk: queues, tickets (with comments) and the requests it saw."""

    def __init__(self, queues: list[str]) -> None:
        self.queues = set(queues)
        self.tickets: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.fail_after_writes: int | None = None  # answer 500 to every write after this many
        self.page_size = 100

    def writes(self) -> int:
        return sum(1 for m, _ in self.requests if m in ("POST", "PUT"))

    def in_queue(self, queue: str) -> list[dict[str, Any]]:
        return [t for t in self.tickets.values() if t["Queue"] == queue]


class Handler(BaseHTTPRequestHandler):
    rt: FakeRT

    def log_message(self, format: str, *args: Any) -> None:
        return

    def reply(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def route(self, method: str) -> None:
        rt = self.rt
        url = urllib.parse.urlsplit(self.path)
        path = url.path.removeprefix("/rt/REST/2.0/")
        rt.requests.append((method, path))
        if self.headers.get("Authorization") != f"token {TOKEN}":
            return self.reply(401, {"message": "Unauthorized"})
        if method in ("POST", "PUT") and rt.fail_after_writes is not None and rt.writes() > rt.fail_after_writes:
            return self.reply(500, {"message": "Internal Server Error"})
        params = urllib.parse.parse_qs(url.query)
        if method == "GET" and path == "queues/all":
            return self.reply(200, {"items": [{"type": "queue", "id": q} for q in sorted(rt.queues)]})
        if method == "GET" and path.startswith("queue/"):
            name = urllib.parse.unquote(path.removeprefix("queue/"))
            return self.reply(200, {"Name": name, "Disabled": "0"}) if name in rt.queues \
                else self.reply(404, {"message": "Resource does not exist"})
        if method == "GET" and path == "tickets":
            sql = params["query"][0]
            match = re.fullmatch(r"Queue = '([^']*)' AND 'CF\.\{(\w+)\}' IS NOT NULL", sql)
            assert match and match.group(2) == CF, sql
            assert "CustomFields" in params["fields"][0]
            found = sorted((t for t in rt.in_queue(match.group(1)) if t["fp"]), key=lambda t: t["id"])
            per = min(int(params.get("per_page", ["20"])[0]), rt.page_size)
            page = int(params.get("page", ["1"])[0])
            pages = max(1, -(-len(found) // per))
            items = [{"id": str(t["id"]), "type": "ticket", "Subject": t["Subject"], "Status": t["Status"],
                      "SLA": t["SLA"], "Queue": {"id": "1", "type": "queue", "Name": t["Queue"]},
                      "CustomFields": [{"id": "3", "type": "customfield", "name": CF, "values": [t["fp"]]}]}
                     for t in found[(page - 1) * per: page * per]]
            return self.reply(200, {"items": items, "page": page, "pages": pages, "total": len(found)})
        if method == "POST" and path == "ticket":
            data = self.body()
            if data["Queue"] not in rt.queues:
                return self.reply(400, {"message": "Invalid queue"})
            ident = len(rt.tickets) + 1
            rt.tickets[ident] = {"id": ident, "Queue": data["Queue"], "Subject": data["Subject"], "Status": "new",
                                 "Priority": data["Priority"], "SLA": data["SLA"], "Due": data["Due"],
                                 "Content": data["Content"], "fp": data["CustomFields"].get(CF), "comments": []}
            return self.reply(201, {"id": str(ident), "type": "ticket"})
        match = re.fullmatch(r"ticket/(\d+)(/comment)?", path)
        if match and int(match.group(1)) in rt.tickets:
            ticket = rt.tickets[int(match.group(1))]
            data = self.body()
            if method == "PUT" and not match.group(2):
                ticket.update({k: v for k, v in data.items() if k in ("Subject", "Status", "Priority", "SLA", "Due")})
                return self.reply(200, ["updated"])
            if method == "POST" and match.group(2):
                ticket["comments"].append(data["Content"])
                return self.reply(201, ["Comments added"])
        return self.reply(404, {"message": "Resource does not exist"})

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def do_PUT(self) -> None:
        self.route("PUT")


@pytest.fixture(scope="module")
def framework() -> Framework:
    return load_estate(REPO).framework


@pytest.fixture()
def fake(framework: Framework) -> Iterator[tuple[FakeRT, str]]:
    rt = FakeRT(["havering", "newham", "waltham-forest", framework.helpdesk.tickets.operations_queue])
    handler = type("BoundHandler", (Handler,), {"rt": rt})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rt, f"http://127.0.0.1:{server.server_address[1]}/rt"
    finally:
        server.shutdown()
        server.server_close()


def finding(council: str, resource: str, status: str = "fail", severity: str = "high", rule: str = "DSK-001",
            message: str = "disk encryption is off", exemption: Exemption | None = None) -> Finding:
    return Finding(rule_id=rule, title="Desktops encrypt their disks", severity=severity, enforcement="mandatory",
                   control="2.1", clause="CE: Secure configuration", area="desktop", council=council, kind="asset",
                   resource=resource, status=status,  # type: ignore[arg-type]
                   message=message, fix="Turn on BitLocker with TPM protection.", exemption=exemption)


def report(*findings: Finding) -> Report:
    councils: dict[str, list[Finding]] = {}
    for f in findings:
        councils.setdefault(f.council, []).append(f)
    return Report("2026.11", NOW.date(), ("assets",),
                  {k: CouncilResult(k, 0.5, fs, {}) for k, fs in councils.items()})


def client(url: str, token: str = TOKEN) -> RtClient:
    return RtClient(url, token, None, timeout=5)


EXEMPTION = Exemption(rule="DSK-001", scope="hv-kiosk-*", reason="kiosks are replaced in March",
                      contract="HAV-C01", expires=dt.date(2027, 3, 31), owner="Head of IT",
                      approver="Board")


def test_each_failing_finding_opens_one_ticket_in_its_councils_queue(
        fake: tuple[FakeRT, str], framework: Framework) -> None:
    rt, url = fake
    first = report(finding("havering", "hv-dt-001"), finding("havering", "hv-dt-002", severity="critical"),
                   finding("havering", "hv-dt-003", status="pass"),
                   finding("havering", "hv-kiosk-1", status="exempt", exemption=EXEMPTION),
                   finding("newham", "nw-dt-001", status="expired", severity="low"),
                   finding("shared", "urn:pulumi:shared::estate::azure-native:network:VirtualNetwork::hub-vnet",
                           rule="NET-001", severity="medium", message="no DDoS plan"))
    summary = sync(client(url), first, framework, now=NOW)
    ops = framework.helpdesk.tickets.operations_queue
    assert {q: (t.opened, t.updated, t.unchanged, t.resolved) for q, t in summary.queues.items()} == {
        "havering": (2, 0, 0, 0), "newham": (1, 0, 0, 0), ops: (1, 0, 0, 0)}
    by_fp = {t["fp"]: t for t in rt.tickets.values()}
    dt1 = by_fp[first.councils["havering"].findings[0].fingerprint]
    assert dt1["Queue"] == "havering" and dt1["Subject"] == "[DSK-001] hv-dt-001: disk encryption is off"
    # severity high -> P2 (framework helpdesk.tickets.severity_priority), its resolution hours -> Due
    p2 = next(t for t in framework.helpdesk.sla.priorities if t.priority == "P2")
    assert dt1["SLA"] == "P2" and dt1["Due"] == (NOW + dt.timedelta(hours=p2.resolution_hours)).strftime(
        "%Y-%m-%d %H:%M:%S")
    assert "Turn on BitLocker" in dt1["Content"] and "Control:     2.1" in dt1["Content"]
    assert dt1["fp"] in dt1["Content"]
    critical = by_fp[first.councils["havering"].findings[1].fingerprint]
    assert critical["SLA"] == "P1" and critical["Priority"] > dt1["Priority"]
    assert by_fp[first.councils["newham"].findings[0].fingerprint]["SLA"] == "P4"
    hub = by_fp[first.councils["shared"].findings[0].fingerprint]
    assert hub["Queue"] == ops and hub["Subject"].startswith("[NET-001] hub-vnet: ")
    # the exempt and passing findings opened nothing
    assert len(rt.tickets) == 4


def test_a_second_sync_duplicates_nothing_and_updates_what_changed(
        fake: tuple[FakeRT, str], framework: Framework) -> None:
    rt, url = fake
    one = report(finding("havering", "hv-dt-001"), finding("havering", "hv-dt-002"))
    sync(client(url), one, framework, now=NOW)
    again = sync(client(url), one, framework, now=NOW)
    assert (again.queues["havering"].opened, again.queues["havering"].unchanged) == (0, 2)
    assert len(rt.tickets) == 2 and not any(t["comments"] for t in rt.tickets.values())

    changed = report(finding("havering", "hv-dt-001", message="disk encryption is suspended", severity="critical"),
                     finding("havering", "hv-dt-002"))
    third = sync(client(url), changed, framework, now=NOW)
    assert (third.queues["havering"].opened, third.queues["havering"].updated,
            third.queues["havering"].unchanged) == (0, 1, 1)
    ticket = next(t for t in rt.tickets.values() if t["fp"] == changed.findings[0].fingerprint)
    assert ticket["Subject"].endswith("disk encryption is suspended") and ticket["SLA"] == "P1"
    assert len(ticket["comments"]) == 1 and "the finding changed" in ticket["comments"][0]
    assert len(rt.tickets) == 2


def test_a_passing_finding_resolves_its_ticket_and_a_failing_one_again_reopens_it(
        fake: tuple[FakeRT, str], framework: Framework) -> None:
    rt, url = fake
    failing = finding("newham", "nw-dt-001")
    sync(client(url), report(failing), framework, now=NOW)
    fixed = sync(client(url), report(dataclasses.replace(failing, status="pass")), framework, now=NOW)
    assert fixed.queues["newham"].resolved == 1
    assert rt.tickets[1]["Status"] == "resolved" and "passes now" in rt.tickets[1]["comments"][-1]
    # resolved once: a later sync leaves it be
    assert sync(client(url), report(dataclasses.replace(failing, status="pass")), framework,
                now=NOW).queues["newham"].resolved == 0
    back = sync(client(url), report(failing), framework, now=NOW)
    assert (back.queues["newham"].opened, back.queues["newham"].updated) == (0, 1)
    assert rt.tickets[1]["Status"] == "open" and len(rt.tickets) == 1


def test_a_finding_exempt_now_resolves_its_ticket_saying_so(fake: tuple[FakeRT, str], framework: Framework) -> None:
    rt, url = fake
    failing = finding("havering", "hv-kiosk-1")
    sync(client(url), report(failing), framework, now=NOW)
    exempt = dataclasses.replace(failing, status="exempt", exemption=EXEMPTION)
    assert sync(client(url), report(exempt), framework, now=NOW).queues["havering"].resolved == 1
    note = rt.tickets[1]["comments"][-1]
    assert "now exempt" in note and "kiosks are replaced in March" in note and "2027-03-31" in note


def test_a_ticket_whose_finding_was_not_judged_is_left_alone(fake: tuple[FakeRT, str], framework: Framework) -> None:
    rt, url = fake
    sync(client(url), report(finding("havering", "hv-dt-001")), framework, now=NOW)
    summary = sync(client(url), report(finding("havering", "hv-dt-009")), framework, now=NOW)
    assert summary.queues["havering"].resolved == 0 and rt.tickets[1]["Status"] == "new"


def test_only_the_chosen_councils_queues_are_touched(fake: tuple[FakeRT, str], framework: Framework) -> None:
    rt, url = fake
    both = report(finding("havering", "hv-dt-001"), finding("newham", "nw-dt-001"))
    summary = sync(client(url), both, framework, councils=["newham"], now=NOW)
    assert list(summary.queues) == ["newham"] and [t["Queue"] for t in rt.tickets.values()] == ["newham"]


def test_every_page_of_a_search_is_read(fake: tuple[FakeRT, str], framework: Framework) -> None:
    rt, url = fake
    rt.page_size = 2
    many = report(*(finding("havering", f"hv-dt-{i:03d}") for i in range(5)))
    sync(client(url), many, framework, now=NOW)
    assert sync(client(url), many, framework, now=NOW).queues["havering"].unchanged == 5
    assert len(rt.tickets) == 5


def test_a_sync_cut_off_half_way_is_resumed_by_the_next(fake: tuple[FakeRT, str], framework: Framework) -> None:
    rt, url = fake
    many = report(*(finding("havering", f"hv-dt-{i:03d}") for i in range(4)))
    rt.fail_after_writes = 2
    with pytest.raises(EstateError) as err:
        sync(client(url), many, framework, now=NOW)
    assert url in str(err.value.problems[0]) and "HTTP 500" in str(err.value.problems[0])
    assert len(rt.tickets) == 2
    rt.fail_after_writes = None
    resumed = sync(client(url), many, framework, now=NOW)
    assert (resumed.queues["havering"].opened, resumed.queues["havering"].unchanged) == (2, 2)
    assert sorted(t["fp"] for t in rt.tickets.values()) == sorted(f.fingerprint for f in many.findings)


def test_a_refused_token_or_a_missing_queue_changes_nothing(fake: tuple[FakeRT, str], framework: Framework) -> None:
    rt, url = fake
    one = report(finding("havering", "hv-dt-001"), finding("newham", "nw-dt-001"))
    with pytest.raises(EstateError) as err:
        sync(client(url, token="1-7-" + "f" * 32), one, framework, now=NOW)
    assert [str(p) for p in err.value.problems] == [f"{url}: the helpdesk refused the token (401 Unauthorized)"]
    rt.queues.discard("newham")
    with pytest.raises(EstateError) as err:
        sync(client(url), one, framework, now=NOW)
    assert str(err.value.problems[0]) == (f"{url}: queue 'newham' does not exist "
                                          "(run `estate configure` for the helpdesk)")
    assert rt.tickets == {} and rt.writes() == 0


def test_an_unreachable_helpdesk_is_one_line_naming_it(framework: Framework) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/rt"
    with pytest.raises(EstateError) as err:
        sync(client(url), report(finding("havering", "hv-dt-001")), framework, now=NOW)
    (problem,) = err.value.problems
    assert str(problem).startswith(f"{url}: the helpdesk is unreachable (")


def test_a_subject_is_capped() -> None:
    text = subject(finding("havering", "hv-dt-001", message="x" * 500))
    assert len(text) == SUBJECT_MAX and text.endswith("...")
    assert subject(finding("shared", "urn:pulumi:shared::estate::azure-native:network:VirtualNetwork::hub-vnet",
                           message="line\nbreak")) == "[DSK-001] hub-vnet: line break"


def test_the_token_comes_from_the_environment_or_the_labs_files_never_an_argument(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  children:\n    helpdesk:\n      hosts:\n        hub-hd01: {ansible_host: 10.9.0.5}\n",
                         encoding="utf-8")
    point = endpoint(tmp_path, url="https://rt.example.org/rt", inventory=inventory, state=tmp_path,
                     environ={"ESTATE_RT_TOKEN": TOKEN})
    assert (point.url, point.token) == ("https://rt.example.org/rt", TOKEN)
    with pytest.raises(EstateError, match="not https"):
        endpoint(tmp_path, url="http://rt.example.org/rt", inventory=inventory, state=tmp_path,
                 environ={"ESTATE_RT_TOKEN": TOKEN})
    with pytest.raises(EstateError, match="no helpdesk API file here"):
        endpoint(tmp_path, url=None, inventory=inventory, state=tmp_path, environ={})
    (tmp_path / "rt-api.json").write_text(json.dumps({"user": "estate-automation", "user_id": 7,
                                                      "web_path": "/rt"}), encoding="utf-8")
    (tmp_path / "secrets.json").write_text(json.dumps({"helpdesk_api_token": "0123456789abcdef" * 2}),
                                           encoding="utf-8")
    with pytest.raises(EstateError, match="no helpdesk certificate here"):
        endpoint(tmp_path, url=None, inventory=inventory, state=tmp_path, environ={})
    point = endpoint(tmp_path, url=None, inventory=inventory, state=tmp_path, insecure=True, environ={})
    assert (point.url, point.token) == ("https://10.9.0.5/rt", TOKEN)


def test_the_cli_syncs_a_repo_copy_and_says_what_it_did(
        fake: tuple[FakeRT, str], repo_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rt, url = fake
    monkeypatch.setenv("ESTATE_RT_TOKEN", TOKEN)
    runner = CliRunner()
    args = ["tickets", "sync", "--url", url, "--insecure", "--council", "newham", "--today", "2026-11-29"]
    first = runner.invoke(cli.app, args)
    assert first.exit_code == 0, first.output
    opened = len(rt.tickets)
    assert opened > 0 and {t["Queue"] for t in rt.tickets.values()} == {"newham"}
    assert first.output.splitlines()[1].split() == ["newham", str(opened), "0", "0", "0"]
    second = runner.invoke(cli.app, args)
    assert second.exit_code == 0 and second.output.splitlines()[1].split() == ["newham", "0", "0", str(opened), "0"]
    assert len(rt.tickets) == opened

    monkeypatch.setenv("ESTATE_RT_TOKEN", "1-7-" + "e" * 32)
    refused = runner.invoke(cli.app, args)
    assert refused.exit_code == 2 and refused.output.strip().splitlines() == [
        f"{url}: the helpdesk refused the token (401 Unauthorized)"]
