"""`estate offboard`: councils leave a copy of the repo; their blocks stay reserved until the day; the remaining
estate validates, plans and checks; refusals and failures mid-write leave the tree as it was."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, HTTPServer
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from estate import ipam
from estate.errors import EstateError
from estate.loader import load_estate
from estate.offboard import (
    INVENTORY_DIR,
    PLAN_JSON,
    TICKETS_JSON,
    UNFINISHED,
    Tickets,
    _export,
    finish_unfinished,
    helpdesk_tickets,
    hub_diff,
    offboard,
)
from estate.onboard import Request, onboard
from estate.plan import HUB, plan
from tests.test_onboard import copy_repo, estate_cmd, snapshot

TODAY = dt.date.today()
# The tests judge as of a day in the past: each departure's day is past by the real clock too, so the reloads
# after a write (which read the real clock, as `estate validate` does) see its reservation over.
BEFORE = TODAY - dt.timedelta(days=90)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = copy_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    monkeypatch.delenv("ESTATE_ROOT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    yield root


def no_helpdesk(estate: Any, key: str) -> Tickets:
    return Tickets(key, "https://helpdesk.test/rt/REST/2.0", None, "; not in this test")


def blocks_held(root: Path, today: dt.date) -> dict[str, IPv4Network]:
    """Every block a council holds or a departure still reserves on `today`, and the hub's."""
    estate = load_estate(root)
    held = {HUB: ipam.parse_network(estate.framework.network.hub.block)}
    held |= {k: ipam.parse_network(r.council.block) for k, r in estate.councils.items()}
    held |= {f"departed/{d.folder.name}": ipam.parse_network(d.departure.block) for d in estate.reservations(today)}
    return held


# --------------------------------------------------------------------------- acceptance


def test_two_councils_leave_and_the_rest_validates_plans_and_checks(repo: Path) -> None:
    for i in range(3):
        onboard(repo, Request(key=f"joiner-{i}", code=f"E0990020{i}", users=1000 * (i + 1), today=BEFORE))
    first_day = BEFORE + dt.timedelta(days=30)
    second_day = BEFORE + dt.timedelta(days=60)
    leaving = load_estate(repo).council("joiner-0").council.block

    one = offboard(repo, "joiner-0", first_day, BEFORE, tickets=no_helpdesk)
    two = offboard(repo, "waltham-forest", second_day, BEFORE, tickets=no_helpdesk)

    estate = load_estate(repo)
    assert "joiner-0" not in estate.councils and "waltham-forest" not in estate.councils
    assert {d.departure.council for d in estate.departures} == {"joiner-0", "waltham-forest"}
    for done, key in ((one, "joiner-0"), (two, "waltham-forest")):
        folder = repo / "departed" / key
        assert done.folder == folder
        assert (folder / INVENTORY_DIR / "council.yml").is_file()
        assert (folder / f"Pulumi.{key}.yaml").is_file() and not (repo / f"Pulumi.{key}.yaml").exists()
        assert not (repo / "inventories" / key).exists() and not (folder / UNFINISHED).exists()
        assert json.loads((folder / PLAN_JSON).read_text(encoding="utf-8"))["council"] == key

    # the shares of the shared service still add up to its cost, before and after each departure
    for done in (one, two):
        money = done.plan.money
        for area, cost in money.costs.items():
            assert money.total(money.before, area) == pytest.approx(cost)
            assert money.total(money.after, area) == pytest.approx(cost)
        assert done.plan.council not in money.after
    assert set(two.plan.money.after) == set(estate.councils)

    # no block is ever held twice, reservations included, on any day around the departures
    for day in (BEFORE, first_day, first_day + dt.timedelta(days=1), second_day, TODAY):
        assert ipam.overlaps(blocks_held(repo, day)) == []

    # a council onboarded before the day does not get the leaver's block; one onboarded after it may
    early = onboard(repo, Request(key="early", code="E09900301", users=500, today=first_day))
    assert early.block != ipam.parse_network(leaving)
    late = onboard(repo, Request(key="late", code="E09900302", users=500,
                                 today=first_day + dt.timedelta(days=1)))
    assert late.block == ipam.parse_network(leaving)
    assert ipam.overlaps(blocks_held(repo, TODAY)) == []

    validate = estate_cmd("validate")
    assert validate.exit_code == 0, validate.output
    planned = estate_cmd("plan", "--all")
    assert planned.exit_code == 0, planned.output
    check = estate_cmd("check", "--today", TODAY.isoformat())
    assert check.exit_code in (0, 1), check.output
    assert "joiner-0" not in check.stdout and "waltham-forest" not in check.stdout


def test_the_remaining_councils_plans_differ_only_by_the_leavers_pieces_in_the_hub(repo: Path) -> None:
    key = "waltham-forest"
    before = plan(load_estate(repo), workers=1)
    block = ipam.parse_network(load_estate(repo).council(key).council.block)
    done = offboard(repo, key, TODAY, TODAY, tickets=no_helpdesk)
    after = plan(load_estate(repo), workers=1)

    for stack in after.stacks:
        if stack != HUB:  # every remaining spoke plans exactly as before
            assert [asdict(r) for r in after.for_stack(stack)] == [asdict(r) for r in before.for_stack(stack)]
    assert key not in after.stacks
    pieces = hub_diff(before.for_stack(HUB), after.for_stack(HUB))
    assert pieces == done.plan.hub  # what the separation plan said the hub stops doing
    assert {p.kind for p in pieces} >= {"peering", "firewall", "nsg", "dns"}
    for piece in pieces:
        assert piece.change in ("removed", "changed")
        if piece.change == "removed":
            assert key in piece.name
            continue
        for line in piece.properties:  # each change takes only the leaver's addresses out
            _, _, what = line.partition(": removed ")
            assert what, line
            assert all(ipam.parse_network(n).subnet_of(block) for n in what.split(", ")), line


# --------------------------------------------------------------------------- refusals


def exchange_line(repo: Path) -> int:
    lines = (repo / "inventories" / "newham" / "council.yml").read_text(encoding="utf-8").splitlines()
    return next(i for i, text in enumerate(lines, 1) if "with: havering" in text)


REFUSALS = [
    (["offboard", "nowhere", "--on", TODAY.isoformat()],
     "estate offboard: NAME: unknown council 'nowhere' (known: havering, newham, waltham-forest)"),
    (["offboard", "shared", "--on", TODAY.isoformat()],
     "estate offboard: NAME: 'shared' is the hub: the hub does not leave"),
    (["offboard", "waltham-forest", "--on", "2030-01-01", "--today", "2030-01-02"],
     "estate offboard: --on: 2030-01-01 is before today (2030-01-02)"),
    (["offboard", "waltham-forest", "--on", "soon"], "--on: 'soon' is not a date (YYYY-MM-DD)"),
    (["offboard", "havering", "--on", TODAY.isoformat()],
     "inventories/newham/council.yml:{line}: exchanges[0].with: newham still exchanges FL-14 with havering: both "
     "councils remove the exchange before it can leave"),
]


@pytest.mark.parametrize(("args", "line"), REFUSALS, ids=[a[1] + "-" + a[-1] for a, _ in REFUSALS])
def test_refusals_are_one_line_exit_2_and_leave_the_tree_unchanged(repo: Path, args: list[str], line: str) -> None:
    before = snapshot(repo)
    result = estate_cmd(*args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [line.format(line=exchange_line(repo))]
    assert snapshot(repo) == before


def test_a_council_the_hub_still_lists_as_a_spoke_is_refused(repo: Path) -> None:
    with (repo / "Pulumi.shared.yaml").open("a", encoding="utf-8") as fh:
        fh.write("  shared-estate:spokes: [waltham-forest]\n")
    before = snapshot(repo)
    result = estate_cmd("offboard", "waltham-forest", "--on", TODAY.isoformat())
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Pulumi.shared.yaml: shared-estate:spokes: the hub still lists waltham-forest as a spoke: remove it and "
        "deploy the hub first"]
    assert snapshot(repo) == before


def test_validate_refuses_a_council_on_a_block_still_reserved(repo: Path) -> None:
    block = load_estate(repo).council("newham").council.block
    folder = repo / "departed" / "old-council"
    folder.mkdir(parents=True)
    later = TODAY + dt.timedelta(days=10)
    (folder / "departure.yml").write_text(
        f"council: old-council\nname: Old\ncode: E09000999\nblock: {block}\nleaves: {later}\ndecided: {TODAY}\n",
        encoding="utf-8")
    result = estate_cmd("validate")
    assert result.exit_code == 2
    line = next(i for i, t in enumerate((repo / "inventories" / "newham" / "council.yml").read_text(
        encoding="utf-8").splitlines(), 1) if t.startswith("block:"))
    assert result.stderr.splitlines() == [
        f"inventories/newham/council.yml:{line}: block: {block} overlaps {block}, reserved for old-council until "
        f"{later} (departed/old-council/departure.yml)"]
    (folder / "departure.yml").write_text(
        f"council: old-council\nname: Old\ncode: E09000999\nblock: {block}\nleaves: {TODAY - dt.timedelta(days=1)}\n"
        f"decided: {TODAY - dt.timedelta(days=9)}\n", encoding="utf-8")
    assert estate_cmd("validate").exit_code == 0  # the day has passed: the block is free


def test_dry_run_shows_the_plan_and_changes_nothing(repo: Path) -> None:
    before = snapshot(repo)
    result = estate_cmd("offboard", "waltham-forest", "--on", TODAY.isoformat(), "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["takes"]["block"] == load_estate(repo).council("waltham-forest").council.block
    assert doc["takes"]["tickets"]["reachable"] is False
    assert doc["takes"]["tickets"]["summary"].startswith("to export: queue waltham-forest (helpdesk not reachable: ")
    assert doc["hub_stops"]["by_kind"]["peering"] == 1
    assert "dry run: nothing changed" in result.stderr
    assert snapshot(repo) == before


def test_the_html_report_carries_the_separation_plan(repo: Path) -> None:
    result = estate_cmd("offboard", "waltham-forest", "--on", TODAY.isoformat(), "--dry-run", "--format", "html",
                        "--output", "plan.html")
    assert result.exit_code == 0, result.output
    page = (repo / "plan.html").read_text(encoding="utf-8")
    assert '<section id="offboard">' in page and "peer-hub-to-waltham-forest" in page
    (repo / "plan.html").unlink()


# --------------------------------------------------------------------------- all or nothing


WRITE_STEPS = [("os.fsync", 1), ("os.fsync", 4), ("os.rename", 1), ("os.rename", 2), ("os.rename", 3),
               ("os.fsync", 8), ("os.unlink", 1), ("shutil.rmtree", 1)]


@pytest.mark.parametrize("failure", ["enospc", "interrupt"])
@pytest.mark.parametrize(("target", "nth"), WRITE_STEPS, ids=[f"{t}-{n}" for t, n in WRITE_STEPS])
def test_a_failure_while_moving_leaves_the_tree_as_it_was(repo: Path, monkeypatch: pytest.MonkeyPatch, target: str,
                                                          nth: int, failure: str) -> None:
    before = snapshot(repo)
    module, name = target.split(".")
    real = getattr(os if module == "os" else shutil, name)
    calls: list[Any] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == nth:
            if failure == "interrupt":
                raise KeyboardInterrupt
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(f"estate.offboard.{target}", flaky)
    if failure == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            offboard(repo, "waltham-forest", TODAY, TODAY, tickets=no_helpdesk)
    else:
        with pytest.raises(EstateError, match="cannot write: No space left on device"):
            offboard(repo, "waltham-forest", TODAY, TODAY, tickets=no_helpdesk)
    assert len(calls) >= nth
    assert snapshot(repo) == before
    assert not (repo / "departed").exists()
    assert sorted(p.name for p in repo.iterdir() if p.name.startswith(".")) == []
    assert estate_cmd("validate").exit_code == 0


def test_a_failure_of_the_final_check_leaves_the_tree_as_it_was(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(repo)
    calls: list[Any] = []

    def second_load_fails(root: Path | None = None) -> Any:
        calls.append(root)
        if len(calls) == 2:
            raise EstateError.one("departed/waltham-forest/departure.yml", 1, "", "simulated failure")
        return load_estate(root)

    monkeypatch.setattr("estate.offboard.load_estate", second_load_fails)
    with pytest.raises(EstateError, match="simulated failure"):
        offboard(repo, "waltham-forest", TODAY, TODAY, tickets=no_helpdesk)
    assert snapshot(repo) == before


def test_what_a_killed_offboard_leaves_loads_and_the_next_one_undoes_it(repo: Path) -> None:
    """SIGKILL after the departed folder appeared and the stack config moved, before the inventory folder did:
    the tree loads (the council keeps its own reservation); the next offboard puts the stack config back."""
    before = snapshot(repo)
    block = load_estate(repo).council("waltham-forest").council.block
    folder = repo / "departed" / "waltham-forest"
    folder.mkdir(parents=True)
    (folder / "departure.yml").write_text(
        f"council: waltham-forest\nname: W\ncode: E09000031\nblock: {block}\nleaves: {TODAY}\ndecided: {TODAY}\n",
        encoding="utf-8")
    (folder / UNFINISHED).write_text("", encoding="utf-8")
    os.rename(repo / "Pulumi.waltham-forest.yaml", folder / "Pulumi.waltham-forest.yaml")
    assert estate_cmd("validate").exit_code == 0
    finish_unfinished(repo)
    assert snapshot(repo) == before
    assert not (repo / "departed").exists()


# --------------------------------------------------------------------------- the helpdesk's tickets


def test_tickets_are_listed_to_export_when_the_lab_is_down(repo: Path) -> None:
    tickets = helpdesk_tickets(load_estate(repo), "newham")
    assert tickets.exported is None
    assert tickets.line.startswith("to export: queue newham (helpdesk not reachable: https://")
    assert tickets.line.endswith("/rt/REST/2.0; the lab is down)")


def test_the_export_reads_every_page_with_the_password_in_a_header_only() -> None:
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            page = int(parse_qs(urlparse(self.path).query)["page"][0])
            body = json.dumps({"items": [{"id": page * 10, "Subject": f"ticket {page}"}], "page": page, "pages": 2,
                               "total": 2}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        items = _export(f"http://127.0.0.1:{server.server_port}/rt/REST/2.0", "estate-automation", "s3cret-pw",
                        "newham")
    finally:
        server.shutdown()
    assert [i["id"] for i in items] == [10, 20]
    assert len(seen) == 2
    for path, auth in seen:
        assert "s3cret-pw" not in path
        assert parse_qs(urlparse(path).query)["query"] == ["Queue = 'newham'"]
        assert auth == "Basic " + base64.b64encode(b"estate-automation:s3cret-pw").decode()


def test_exported_tickets_travel_with_the_council(repo: Path) -> None:
    def exported(estate: Any, key: str) -> Tickets:
        return Tickets(key, "https://helpdesk.test/rt/REST/2.0", [{"id": 7, "Subject": "printer"}])

    done = offboard(repo, "waltham-forest", TODAY, TODAY, tickets=exported)
    saved = json.loads((done.folder / TICKETS_JSON).read_text(encoding="utf-8"))
    assert saved == [{"id": 7, "Subject": "printer"}]
    assert "exported: 1 tickets of queue waltham-forest" in (done.folder / "separation-plan.md").read_text(
        encoding="utf-8")
