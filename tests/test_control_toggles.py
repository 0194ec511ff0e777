"""Exemptions reach the roles (issue 14, item 4): every task that enforces a framework control carries the
control's tag (`control_<id>`) and sits behind its toggle (`estate_control_<id with _>`); `estate configure` turns
each council's active exemptions into toggles off for the hosts they cover, runs one control alone with
`--control` and all but one with `--skip-control`.

The unit tests read the roles as data and run `estate.configure` with a fake ansible-runner. The lab test (mark
`lab`) configures the lab's thin clients of two councils, one of which (havering) exempts control 2.5.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from estate import configure
from estate.ansible_inventory import build
from estate.controls.spec import controls, tag, toggle
from estate.loader import Estate, load_estate
from tests.test_configure import FakeRunner

REPO = Path(__file__).resolve().parent.parent
ROLES_DIR = REPO / "roles"
TASK_ID = re.compile(r"^[A-Z][a-z]+ \| (?P<id>[^|]+?) \| ")
TOGGLE = re.compile(r"\b(estate_control_[0-9_]+) \| bool\b")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(value)] if isinstance(value, (str, bool)) else [str(v) for v in value]


def effective_tasks(role: str) -> Iterator[tuple[str, dict[str, Any], set[str], list[str]]]:
    """Every task the role runs from tasks/main.yml (imports followed, blocks entered) with the tags and the
    `when` conditions it inherits: (file, task, tags, conditions). Blocks and imports are not yielded."""
    tasks = ROLES_DIR / role / "tasks"

    def walk(items: Any, file: str, tags: set[str], when: list[str]) -> Iterator[tuple[str, dict[str, Any],
                                                                                 set[str], list[str]]]:
        for item in items or []:
            mine = tags | set(_list(item.get("tags")))
            cond = when + _list(item.get("when"))
            target = item.get("ansible.builtin.import_tasks")
            if target:
                yield from walk(_yaml(tasks / target), target, mine, cond)
            elif "block" in item:
                yield from walk(item["block"], file, mine, cond)
            else:
                yield file, item, mine, cond

    yield from walk(_yaml(tasks / "main.yml"), "main.yml", set(), [])


def framework_ids(estate: Estate) -> set[str]:
    return {c.id for _, c in estate.framework.controls()}


ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "tasks" / "main.yml").is_file())


@pytest.mark.parametrize("role", ROLES)
def test_every_control_task_carries_its_tag_and_sits_behind_its_toggle(role: str, estate: Estate) -> None:
    """A task named for a framework control runs under that control's tag and its toggle, or is one every
    control needs (tag `always`, no toggle); a task named for no control (a flow, IPAM) has no control tag. A
    task that serves two controls carries both tags and both toggles."""
    known = framework_ids(estate)
    seen = 0
    for file, task, tags, when in effective_tasks(role):
        where = f"roles/{role}/tasks/{file}: {task['name']!r}"
        match = TASK_ID.match(task["name"])
        assert match, where
        ident = match["id"]
        toggles = {name for c in when for name in TOGGLE.findall(c)}
        if "always" in tags:
            assert not toggles, f"{where} runs for every control: it has no toggle"
            continue
        if ident not in known:
            assert not {t for t in tags if t.startswith(tag(""))} and not toggles, f"{where} enforces no control"
            continue
        assert tag(ident) in tags, f"{where} lacks the tag {tag(ident)}"
        assert toggle(ident) in toggles, f"{where} is not behind {toggle(ident)}"
        # a task shared by two controls (the kiosk account: 2.8's, needed by 2.7) runs when either is on
        assert toggles == {toggle(t.removeprefix(tag(""))) for t in tags}, where
        seen += 1
    assert seen


@pytest.mark.parametrize("role", ROLES)
def test_each_toggle_defaults_to_true_and_is_declared(role: str) -> None:
    enforced = {c for c, roles in configure.role_controls(REPO).items() if role in roles}
    defaults = _yaml(ROLES_DIR / role / "defaults" / "main.yml") or {}
    options = _yaml(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    declared = {name for name in defaults if name.startswith("estate_control_")}
    assert declared == {toggle(c) for c in enforced}
    for name in declared:
        assert defaults[name] is True, name
        assert options[name]["type"] == "bool" and options[name]["default"] is True, name


def test_role_controls_are_framework_controls(estate: Estate) -> None:
    enforced = configure.role_controls(REPO)
    assert set(enforced) <= framework_ids(estate)
    assert enforced["5.7"] == {"baseline"} and enforced["2.5"] == {"thin_client"}
    assert enforced["5.8"] == {"baseline", "log_collector"}
    assert enforced["1.2"] == {"router"}  # the flow matrix: segmentation
    assert enforced["2.6"] == {"baseline"}  # a thin client's automatic updates are the baseline's (with 5.1)


def test_every_control_declared_with_roles_has_tagged_tasks_in_each() -> None:
    """The control homes' `roles=(...)` and the roles' tags agree: each role a control names tags at least one
    task `control_<id>` (the meta-test of tests/test_controls.py may take this over)."""
    enforced = configure.role_controls(REPO)
    estate = load_estate(REPO)
    from estate.controls.base import control_at

    for path, spec in controls().items():
        ident = control_at(estate.framework, path).id
        for role in spec.roles:
            assert role in enforced.get(ident, set()), f"{path} ({ident}) names role {role}, which has no task " \
                                                       f"tagged {tag(ident)}"


# --------------------------------------------------------------------------- exemptions -> toggles


def lab_hosts(estate: Estate) -> dict[str, dict[str, Any]]:
    """The lab inventory's hosts (names and groups) for the example estate, without a lab."""
    from estate.loader import host_addresses

    out: dict[str, dict[str, Any]] = {}
    for key in ("shared", *estate.councils):
        for name, role, _, _ in host_addresses(estate, key):
            out[name] = {"vars": {"estate_council": key}, "groups": {"all", configure.council_group(key), role}}
    return out


def exempting(root: Path, council: str, *changes: dict[str, Any]) -> Estate:
    """The estate at `root` with the council's exemptions replaced: each a copy of its first exemption (so every
    field the model asks for is there) with `changes` applied."""
    path = root / "inventories" / council / "council.yml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    first = doc["exemptions"][0]
    doc["exemptions"] = [{**first, **change} for change in changes]
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return load_estate(root)


TODAY = dt.date(2026, 11, 29)
LATER = TODAY + dt.timedelta(days=90)


def test_the_example_exemption_turns_usb_storage_off_on_haverings_thin_clients(estate: Estate) -> None:
    hosts = lab_hosts(estate)
    exempt = configure.exempt_controls(estate, hosts, TODAY, configure.role_controls(REPO))
    # waltham-forest's HLP-001 (4.1) is the helpdesk role's, which runs on the hub's host, none of its own
    assert any(ex.rule == "HLP-001" for ex in estate.councils["waltham-forest"].council.exemptions)
    assert [(e.council, e.control, e.rule, e.hosts) for e in exempt] == [("havering", "2.5", "DSK-007", ("hav-tc01",))]
    assert configure.toggle_vars(exempt) == {"hav-tc01": {"estate_control_2_5": False}}
    assert exempt[0].describe().startswith("2.5 on havering (DSK-007, until 2027-06-30, contract HAV-C02): hav-tc01")
    # the day it expires it is no longer active: the control is enforced again
    assert configure.exempt_controls(estate, hosts, exempt[0].expires, configure.role_controls(REPO)) == []


def test_scope_expiry_and_controls_no_role_enforces(repo_copy: Path) -> None:
    est = exempting(repo_copy, "newham",
                    {"rule": "SEC-006", "scope": "*", "expires": LATER},  # 5.7 on every newham host
                    {"rule": "DSK-006", "scope": "nwm-tc0?", "expires": LATER},  # 2.4 on its thin client
                    {"rule": "SEC-002", "scope": "nwm-app01", "expires": TODAY},  # expired today: not active
                    {"rule": "SEC-003", "scope": "nwm-file01", "expires": LATER},  # an asset: no lab host
                    {"rule": "DCN-009", "scope": "*", "expires": LATER},  # a register rule: no role enforces it
                    {"rule": "DSK-007", "scope": "nwm-app01", "expires": LATER})  # 2.5 is no app server's
    hosts = lab_hosts(est)
    exempt = configure.exempt_controls(est, hosts, TODAY, configure.role_controls(REPO))
    newham = sorted(n for n, h in hosts.items() if h["vars"]["estate_council"] == "newham")
    assert [(e.council, e.control, e.hosts) for e in exempt] == [
        ("havering", "2.5", ("hav-tc01",)), ("newham", "5.7", tuple(newham)), ("newham", "2.4", ("nwm-tc01",))]
    toggles = configure.toggle_vars(e for e in exempt if e.council == "newham")
    assert toggles == {**{n: {"estate_control_5_7": False} for n in newham},
                       "nwm-tc01": {"estate_control_2_4": False, "estate_control_5_7": False}}


def test_the_toggles_travel_as_host_vars_of_the_inventory_plugin(with_roles: Path, tmp_path: Path) -> None:
    """Host vars (which outrank the roles' defaults and playbooks/group_vars), never extra vars (every host's)."""
    est = load_estate(with_roles)
    inv = build(est, sources=["lab"], lab_inventory=_inventory(tmp_path), today=TODAY)
    assert inv.hosts["hav-tc01"]["estate_control_2_5"] is False
    assert not any(k.startswith("estate_control_") for k in inv.hosts["nwm-tc01"])
    assert not any(k.startswith("estate_control_") for k in inv.vars)
    later = build(est, sources=["lab"], lab_inventory=_inventory(tmp_path), today=dt.date(2099, 1, 1))
    assert not any(k.startswith("estate_control_") for h in later.hosts.values() for k in h)


# --------------------------------------------------------------------------- the run and the CLI


def _inventory(tmp_path: Path) -> Path:
    doc = {"all": {"children": {
        "council_havering": {"hosts": {"hav-tc01": {"ansible_host": "192.0.2.10", "estate_council": "havering"}}},
        "council_newham": {"hosts": {"nwm-tc01": {"ansible_host": "192.0.2.12", "estate_council": "newham"}}},
        "thin_client": {"hosts": {"hav-tc01": {}, "nwm-tc01": {}}}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture
def with_roles(repo_copy: Path) -> Path:
    (repo_copy / "roles").symlink_to(ROLES_DIR)
    (repo_copy / "playbooks").symlink_to(REPO / "playbooks")
    return repo_copy


def test_run_passes_the_control_tags_and_the_plugin_the_day(with_roles: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import ansible_runner

    fake = FakeRunner()
    monkeypatch.setattr(ansible_runner, "run", fake)
    est = load_estate(with_roles)
    inventory = _inventory(tmp_path)
    result = configure.run(est, inventory=inventory, controls=["2.5", "5.7", "2.5"], today=TODAY)
    kw = fake.kwargs
    assert kw["tags"] == "control_2.5,control_5.7" and kw["skip_tags"] is None
    [config] = kw["inventory"]  # the plugin's config: the lab inventory's hosts, exemptions judged on TODAY
    assert _yaml(Path(config)) == {"plugin": "shared_estate.estate.estate", "sources": ["lab"],
                                   "lab_inventory": str(inventory.resolve()), "today": TODAY.isoformat()}
    assert [(e.council, e.control) for e in result.exempt] == [("havering", "2.5")]
    assert "estate_control_2_5" not in kw["extravars"]  # never on the command line: it would hit every host

    newham = configure.run(est, inventory=inventory, skip_controls=["5.8"], council="newham", today=TODAY)
    kw = fake.kwargs
    assert kw["tags"] is None and kw["skip_tags"] == "control_5.8" and kw["limit"] == "council_newham"
    assert newham.exempt == []  # havering's exemption is not newham's


@pytest.mark.parametrize(("args", "message"), [
    (["--control", "9.9"], "--control: no control '9.9' in framework.yaml"),
    (["--control", "5.7", "--control", "x"], "--control: no control 'x' in framework.yaml"),
    (["--control", "3.5"], "--control: control 3.5 is enforced by no role"),
    (["--skip-control", "3.5"], "--skip-control: control 3.5 is enforced by no role"),
])
def test_an_unknown_or_unenforced_control_is_one_line(with_roles: Path, args: list[str], message: str) -> None:
    from estate.cli import _register_extensions, app

    _register_extensions()
    # no lab inventory here either: the control id is what is refused, first
    result = CliRunner().invoke(app, ["configure", *args, "--root", str(with_roles)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.output


# --------------------------------------------------------------------------- in the lab


# Ansible's own first task of each role, checking its variables against meta/argument_specs.yml (tagged always).
ARGSPEC = "Validating arguments against arg spec"


def always_tasks() -> set[str]:
    """Names of the tasks every control needs (tag `always`), and the play's own: fact gathering, the role
    include."""
    names = {"Gathering Facts", "Estate | the role of the host's group"}
    for role in ROLES:
        names |= {task["name"] for _, task, tags, _ in effective_tasks(role) if "always" in tags}
    return names


@pytest.fixture(scope="module")
def thin_clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, dict[str, Any]]]]:
    """The lab (up, unless it already was; down at the end if this module brought it up) and an inventory of
    its thin clients of havering, which exempts control 2.5 (DSK-007 on hav-tc*), and of newham, which does not."""
    from estate.lab.lab import down, paths, up

    was_up = paths(REPO).state.exists()
    up(REPO, progress=False)
    try:
        doc = _yaml(paths(REPO).inventory)
        hosts: dict[str, dict[str, Any]] = {}

        def walk(name: str, group: dict[str, Any], inherited: dict[str, Any]) -> None:
            gvars = {**inherited, **(group.get("vars") or {})}
            for host, hvars in (group.get("hosts") or {}).items():
                entry = hosts.setdefault(host, {"vars": {}, "groups": set()})
                entry["vars"] = {**gvars, **entry["vars"], **(hvars or {})}
                entry["groups"].add(name)
            for child, body in (group.get("children") or {}).items():
                walk(child, body or {}, gvars)

        walk("all", doc["all"], {})
        wanted = {name for name, h in hosts.items() if "thin_client" in h["groups"]
                  and h["vars"].get("estate_council") in ("havering", "newham")}
        assert len(wanted) == 2

        def keep(group: dict[str, Any]) -> dict[str, Any]:
            out = dict(group)
            if "hosts" in group:
                out["hosts"] = {n: v for n, v in (group["hosts"] or {}).items() if n in wanted}
            if "children" in group:
                out["children"] = {n: keep(c or {}) for n, c in group["children"].items()}
            return out

        path = tmp_path_factory.mktemp("toggles") / "inventory.yml"
        path.write_text(yaml.safe_dump({"all": keep(doc["all"])}, sort_keys=False), encoding="utf-8")
        yield path, {n: hosts[n] for n in wanted}
    finally:
        if not was_up:
            down(REPO, progress=False)


def usb_blocked(container: str) -> tuple[bool, bool]:
    """(the 2.5 file is there, some modprobe file blocks usb-storage: what DSK-007's probe reads)."""
    from estate.lab.lab import Podman

    text = Podman(REPO)("exec", container, "sh", "-c", "cat /etc/modprobe.d/*.conf /lib/modprobe.d/*.conf "
                        "2>/dev/null; test -e /etc/modprobe.d/estate-usb-storage.conf && echo FILE-THERE",
                        check=False, timeout=60)
    return "FILE-THERE" in text, bool(re.search(r"^install usb[-_]storage /bin/(true|false)", text, re.M))


@pytest.mark.lab
def test_one_control_runs_alone_skipped_where_exempt_and_enforced_elsewhere(
        thin_clients: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    inventory, hosts = thin_clients
    by_council = {h["vars"]["estate_council"]: name for name, h in hosts.items()}
    exempt, enforced = by_council["havering"], by_council["newham"]
    est = load_estate(REPO)
    events: list[tuple[str, str, str]] = []

    def collect(event: Any) -> None:
        data = event.get("event_data") or {}
        if str(event.get("event", "")).startswith("runner_on_") and data.get("task"):
            events.append((str(event["event"]), str(data.get("host")), str(data["task"])))

    result = configure.run(est, inventory=inventory, controls=["2.5"], on_event=collect)
    assert result.exit_code == 0, [t.errors for t in result.tally.hosts.values()]
    assert [(e.council, e.control, e.hosts) for e in result.exempt] == [("havering", "2.5", (exempt,))]
    # only control 2.5's tasks ran, besides those every control needs (facts, package lists and packages)
    common = always_tasks()
    others = {task for _, _, task in events if task not in common and not task.startswith(ARGSPEC)}
    assert others == {"Desktop | 2.5 | USB mass storage is blocked"}, others
    usb = {(kind, host) for kind, host, task in events if task in others}
    assert ("runner_on_ok", enforced) in usb and ("runner_on_skipped", exempt) in usb
    assert not any(kind == "runner_on_ok" and host == exempt for kind, host in usb)
    # on the hosts: enforced on newham's thin client, left alone on havering's
    assert usb_blocked(hosts[enforced]["vars"]["estate_container"]) == (True, True)
    assert usb_blocked(hosts[exempt]["vars"]["estate_container"]) == (False, False)

    # the CLI says so, and a second run changes nothing
    from estate.cli import _register_extensions, app

    _register_extensions()
    again = CliRunner().invoke(app, ["configure", "--control", "2.5", "--quiet", "--inventory", str(inventory),
                                     "--root", str(REPO)])
    assert again.exit_code == 0, again.output
    assert f"exempt, not enforced: 2.5 on havering (DSK-007, until 2027-06-30, contract HAV-C02): {exempt}" \
        in again.output
    total = next(line for line in again.output.splitlines() if re.match(r"^\W*total\W", line))
    ok, changed, failed, unreachable, skipped = (int(n) for n in re.findall(r"\d+", total))
    assert (changed, failed, unreachable) == (0, 0, 0) and ok > 0 and skipped > 0
