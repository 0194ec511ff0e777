"""`estate onboard`: a fourth council into a copy of the repo, refusals that leave the tree unchanged,
the supernet running out at exactly the right count, CSV errors by line and column."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner, Result

from estate import cli, ipam
from estate.errors import EstateError
from estate.loader import host_addresses, load_estate
from estate.onboard import HOST_NAME_MAX, Request, onboard

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "examples"
BAD = Path(__file__).parent / "data" / "onboard" / "bad"
BAD_EXPECTED: dict[str, str] = yaml.safe_load((BAD / "expected.yaml").read_text(encoding="utf-8"))
REGISTER = DOCS / "redbridge-register.csv"
CONTRACTS = DOCS / "redbridge-contracts.csv"
# What a repo needs for onboard, plan and check: the spec, the inventories, the Pulumi project.
COPY = ("framework.yaml", "inventories", "Pulumi.yaml", "stacks")

cli._register_extensions()
runner = CliRunner()


def copy_repo(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy(src, dest / name)
    for stack_file in REPO.glob("Pulumi.*.yaml"):
        shutil.copy(stack_file, dest / stack_file.name)
    return dest


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A copy of the repo's spec, inventories and Pulumi project; also the working directory."""
    root = copy_repo(tmp_path / "repo")
    monkeypatch.chdir(root)
    monkeypatch.delenv("ESTATE_ROOT", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    yield root


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (path -> sha256): what 'the tree is unchanged' compares."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def estate_cmd(*args: str) -> Result:
    return runner.invoke(cli.app, list(args))


def all_segments(root: Path) -> dict[str, IPv4Network]:
    plan = load_estate(root).addresses
    return {f"{site.key}/{seg.name}": seg.network
            for site in [plan.hub, *plan.councils.values()] for seg in site.segments}


# --------------------------------------------------------------------------- the fourth council


def test_a_fourth_council_onboards_and_the_estate_still_validates_plans_and_checks(repo: Path) -> None:
    before = load_estate(repo)
    fw = before.framework
    expected_block = ipam.next_free_block(
        ipam.parse_network(fw.network.supernet), fw.network.council_prefix,
        [ipam.parse_network(fw.network.hub.block), *(ipam.parse_network(r.council.block)
                                                     for r in before.councils.values())])
    shutil.copy(REGISTER, repo / "register.csv")
    shutil.copy(CONTRACTS, repo / "contracts.csv")

    result = estate_cmd("onboard", "redbridge", "--code", "E09000026", "--users", "4100",
                        "--title", "London Borough of Redbridge", "--assets", "register.csv",
                        "--contracts", "contracts.csv")
    assert result.exit_code == 0, result.output
    assert f"onboarded redbridge: block {expected_block}" in result.stdout
    # the gap analysis of the new council follows, as `estate check --council redbridge` prints it
    gap = result.stdout.split("Gap analysis (estate check --council redbridge):", 1)[1]
    assert "DSK-009" in gap  # Windows 10 22H2 from the register is not a supported desktop OS
    assert "NET-010" in gap  # rb-fw01's vendor support has ended
    assert "estate check --council redbridge exits 1" in gap

    after = load_estate(repo)
    assert set(after.councils) == {*before.councils, "redbridge"}
    council = after.council("redbridge").council
    assert council.block == str(expected_block)
    assert council.users.staff == 4100
    assert (len(council.assets.desktops), len(council.assets.servers), len(council.assets.network)) == (3, 4, 3)
    assert council.assets.helpdesk is not None and not council.assets.helpdesk.shared_queue
    assert [c.id for c in council.contracts] == ["RB-C01", "RB-C02", "RB-C03", "RB-C04", "RB-C05"]
    assert ipam.overlaps(all_segments(repo)) == []

    hosts = host_addresses(after, "redbridge")
    wanted = fw.onboarding.hosts if fw.onboarding else []
    assert [(role, seg.name) for _, role, seg, _ in hosts] == [(h.role, h.vlan) for h in wanted]
    for _, _, seg, address in hosts:
        assert address in seg.network and seg.network.subnet_of(expected_block)

    stack = yaml.safe_load((repo / "Pulumi.redbridge.yaml").read_text(encoding="utf-8"))["config"]
    assert stack["azure-native:location"] == fw.data_centre.regions.primary

    validate = estate_cmd("validate")
    assert validate.exit_code == 0, validate.output
    assert f"{len(before.councils) + 1} councils valid" in validate.stdout
    plan = estate_cmd("plan", "--council", "redbridge")
    assert plan.exit_code == 0, plan.output
    check = estate_cmd("check")
    assert check.exit_code in (0, 1), check.output
    assert "redbridge" in check.stdout


def test_today_dates_the_header_of_the_files_it_writes(repo: Path) -> None:
    result = estate_cmd("onboard", "redbridge", "--code", "E09000026", "--users", "10", "--today", "2031-02-03")
    assert result.exit_code in (0, 1), result.output
    first = (repo / "inventories" / "redbridge" / "council.yml").read_text(encoding="utf-8").splitlines()[0]
    assert first == "# Redbridge: onboarded by `estate onboard` on 2031-02-03"


def test_without_a_register_the_council_has_empty_asset_lists(repo: Path) -> None:
    result = estate_cmd("onboard", "barking-and-dagenham", "--code", "E09000002", "--users", "2500")
    assert result.exit_code == 0, result.output
    council = load_estate(repo).council("barking-and-dagenham").council
    assert council.assets.desktops == [] and council.assets.servers == [] and council.assets.network == []
    assert council.assets.helpdesk is None
    assert council.contracts == [] and council.exemptions == []
    assert council.name == "Barking And Dagenham"
    assert council.users.desktop == 2500 and council.users.helpdesk_agents == 0
    assert "HLP-001" in result.stdout  # no helpdesk registered: the gap analysis says so


def test_host_names_come_from_the_key_and_stay_unique(repo: Path) -> None:
    estate = load_estate(repo)
    taken = {h.name for r in estate.councils.values() if r.hosts for h in r.hosts.hosts}
    # a key whose natural host names are taken already: the number moves on
    prefix = sorted(taken)[0].split("-")[0]
    done = onboard(repo, Request(key=prefix, code="E09000098", users=100))
    names = [name for name, _, _ in done.hosts]
    assert not set(names) & taken
    assert all(name.startswith(f"{prefix}-") for name in names)
    # a long key is cut so the names stay valid lab host names
    long_key = "royal-borough-of-somewhere-very-long-name"[:40].rstrip("-")
    done = onboard(repo, Request(key=long_key, code="E09000097", users=100))
    assert all(len(name) <= HOST_NAME_MAX for name, _, _ in done.hosts)
    assert estate_cmd("validate").exit_code == 0


def test_parallel_onboards_never_share_a_block(repo: Path) -> None:
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            onboard(repo, Request(key=f"parallel-{i}", code=f"E0990010{i}", users=100 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    estate = load_estate(repo)
    assert {f"parallel-{i}" for i in range(3)} <= set(estate.councils)
    assert ipam.overlaps(all_segments(repo)) == []


# --------------------------------------------------------------------------- refusals


REFUSALS = [
    (["onboard", "newham", "--code", "E09000099", "--users", "10"],
     "estate onboard: NAME: council 'newham' already exists (inventories/newham/council.yml)"),
    (["onboard", "redbridge", "--code", "E09000025", "--users", "10"],
     "estate onboard: --code: code E09000025 is already newham's (inventories/newham/council.yml:4)"),
    (["onboard", "redbridge", "--code", "X09000026", "--users", "10"],
     "estate onboard: --code: 'X09000026' is not a GSS code (E, N, S or W then eight digits)"),
    (["onboard", "redbridge", "--code", "E0900002", "--users", "10"],
     "estate onboard: --code: 'E0900002' is not a GSS code (E, N, S or W then eight digits)"),
    (["onboard", "shared", "--code", "E09000026", "--users", "10"],
     "estate onboard: NAME: 'shared' is the hub's key"),
    (["onboard", "Red Bridge", "--code", "E09000026", "--users", "10"],
     "estate onboard: NAME: 'Red Bridge' is not a council key (lower-case letters, digits and '-', 2 to 40 "
     "characters)"),
    (["onboard", "redbridge", "--code", "E09000026", "--users", "0"],
     "estate onboard: --users: 0 users: a council has at least one"),
    (["onboard", "redbridge", "--code", "E09000026", "--users", "10", "--assets", "missing.csv"],
     "missing.csv: file not found"),
]


@pytest.mark.parametrize(("args", "line"), REFUSALS, ids=[" ".join(a[1:4]) for a, _ in REFUSALS])
def test_refusals_are_one_line_exit_2_and_leave_the_tree_unchanged(repo: Path, args: list[str], line: str) -> None:
    before = snapshot(repo)
    result = estate_cmd(*args)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [line]
    assert snapshot(repo) == before


def test_a_leftover_stack_config_is_not_overwritten(repo: Path) -> None:
    (repo / "Pulumi.redbridge.yaml").write_text("config: {}\n", encoding="utf-8")
    before = snapshot(repo)
    result = estate_cmd("onboard", "redbridge", "--code", "E09000026", "--users", "10")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["Pulumi.redbridge.yaml: already exists; not overwritten"]
    assert snapshot(repo) == before


@pytest.mark.parametrize("case", sorted(BAD_EXPECTED))
def test_a_bad_csv_is_reported_by_line_and_column(repo: Path, case: str) -> None:
    option, name = ("--contracts", "contracts.csv") if case.startswith("contracts-") else ("--assets", "register.csv")
    shutil.copy(BAD / f"{case}.csv", repo / name)
    before = snapshot(repo)
    result = estate_cmd("onboard", "redbridge", "--code", "E09000026", "--users", "10", option, name)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [BAD_EXPECTED[case]]
    assert "Traceback" not in result.output
    assert snapshot(repo) == before


def test_the_bad_csv_corpus_covers_every_file() -> None:
    assert sorted(p.stem for p in BAD.glob("*.csv")) == sorted(BAD_EXPECTED)
    assert len(BAD_EXPECTED) >= 20


def test_every_bad_row_is_reported_at_once(repo: Path) -> None:
    header = (BAD / "bad-count.csv").read_text(encoding="utf-8").splitlines()[0]
    rows = ["desktop,,desktop,,Windows,11 24H2,many,Acme,,,,,,,,,,",
            "network,x-fw01,firewall,,,,,,,,,,,,Acme,FW,someday,",
            "server,x-app01,,app,Debian,12,,,azure,,,perhaps,yes,no,,,,"]
    (repo / "register.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = estate_cmd("onboard", "redbridge", "--code", "E09000026", "--users", "10", "--assets", "register.csv")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "register.csv:2: count: 'many' is not a whole number",
        "register.csv:3: end_of_support: 'someday' is not a date (YYYY-MM-DD)",
        "register.csv:4: encrypted: 'perhaps' is not yes/no (true, false, yes, no)",
    ]


# --------------------------------------------------------------------------- all or nothing


# Each step of the write, failing with a full disk or interrupted (Ctrl-C; SIGTERM and SIGHUP raise the same
# KeyboardInterrupt, see estate.signals): (what is patched, which call of it fails).
WRITE_STEPS = [("os.fsync", 1), ("os.fsync", 5), ("os.rename", 1), ("os.fsync", 6), ("os.link", 1),
               ("os.fsync", 7), ("os.unlink", 1), ("os.fsync", 8), ("shutil.rmtree", 1)]


@pytest.mark.parametrize("failure", ["enospc", "interrupt"])
@pytest.mark.parametrize(("target", "nth"), WRITE_STEPS, ids=[f"{t}-{n}" for t, n in WRITE_STEPS])
def test_a_failure_while_writing_leaves_no_file_behind(repo: Path, monkeypatch: pytest.MonkeyPatch, target: str,
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

    monkeypatch.setattr(f"estate.onboard.{target}", flaky)
    if failure == "interrupt":
        with pytest.raises(KeyboardInterrupt):
            onboard(repo, Request(key="redbridge", code="E09000026", users=10))
    else:
        with pytest.raises(EstateError, match="cannot write: No space left on device"):
            onboard(repo, Request(key="redbridge", code="E09000026", users=10))
    assert len(calls) >= nth  # the failing call was reached (the clean-up may call it again)
    assert snapshot(repo) == before
    assert sorted(p.name for p in repo.iterdir() if p.name.startswith(".")) == []  # no staging folder left
    assert estate_cmd("validate").exit_code == 0


def test_what_a_killed_onboard_leaves_does_not_break_the_next(repo: Path) -> None:
    """SIGKILL cannot be caught: it can leave a staging folder, or a whole council whose stack config was
    not linked yet (marked in its folder). Every command still loads; the next onboard removes the one and
    writes the other's stack config."""
    onboard(repo, Request(key="redbridge", code="E09000026", users=10))
    stack = repo / "Pulumi.redbridge.yaml"
    text = stack.read_text(encoding="utf-8")
    stack.unlink()  # as if killed after the folder's rename, before the stack config's link
    (repo / "inventories" / "redbridge" / ".onboard-unfinished").write_text("", encoding="utf-8")
    stale = repo / ".estate-onboard.x1y2.tmp"
    (stale / "barking").mkdir(parents=True)
    (stale / "barking" / "council.yml").write_text("name: [half\n", encoding="utf-8")
    validate = estate_cmd("validate")
    assert validate.exit_code == 0, validate.output
    onboard(repo, Request(key="barking", code="E09000002", users=10))
    assert stack.read_text(encoding="utf-8") == text
    assert not (repo / "inventories" / "redbridge" / ".onboard-unfinished").exists()
    assert not stale.exists()
    assert estate_cmd("validate").exit_code == 0


def test_a_failure_of_the_final_check_leaves_no_file_behind(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(repo)
    real = load_estate
    calls = []

    def second_load_fails(root: Path | None = None) -> Any:
        calls.append(root)
        if len(calls) == 2:  # the re-read after the files are in place
            raise EstateError.one("inventories/redbridge/council.yml", 1, "", "simulated failure")
        return real(root)

    monkeypatch.setattr("estate.onboard.load_estate", second_load_fails)
    with pytest.raises(EstateError, match="simulated failure"):
        onboard(repo, Request(key="redbridge", code="E09000026", users=10))
    assert snapshot(repo) == before


# --------------------------------------------------------------------------- the supernet runs out


def small_supernet_repo(root: Path, prefix: int, keep_examples: bool) -> Path:
    copy_repo(root)
    path = root / "framework.yaml"
    text = path.read_text(encoding="utf-8")
    fw = load_estate(REPO).framework
    old = f"  supernet: {fw.network.supernet}\n"
    assert old in text
    supernet = ipam.parse_network(fw.network.supernet)
    smaller = IPv4Network((supernet.network_address, prefix))
    path.write_text(text.replace(old, f"  supernet: {smaller}\n", 1), encoding="utf-8")
    if not keep_examples:
        for folder in (root / "inventories").iterdir():
            if folder.is_dir() and folder.name != ipam.HUB:  # keep estate.yml, the inventory plugin's config
                shutil.rmtree(folder)
        for stack_file in root.glob("Pulumi.*.yaml"):
            if stack_file.stem.split(".", 1)[1] != ipam.HUB:
                stack_file.unlink()
    return root


@pytest.mark.parametrize("keep_examples", [False, True], ids=["empty", "with-examples"])
def test_onboarding_in_a_loop_ends_with_supernet_exhausted_at_exactly_the_right_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_examples: bool) -> None:
    root = small_supernet_repo(tmp_path / "repo", 17, keep_examples)
    monkeypatch.chdir(root)
    monkeypatch.delenv("ESTATE_ROOT", raising=False)
    estate = load_estate(root)
    fw = estate.framework
    supernet = ipam.parse_network(fw.network.supernet)
    hub = ipam.parse_network(fw.network.hub.block)
    # the blocks of the supernet, less those the hub covers, less the councils already there
    blocks = 2 ** (fw.network.council_prefix - supernet.prefixlen)
    hub_blocks = max(1, 2 ** (fw.network.council_prefix - hub.prefixlen))
    room = blocks - hub_blocks - len(estate.councils)
    assert room == (7 - 3 if keep_examples else 7)

    made = 0
    with pytest.raises(EstateError) as exhausted:
        while made <= room:
            onboard(root, Request(key=f"council-{made + 1:02d}", code=f"W{made + 1:08d}", users=1000))
            made += 1
    assert made == room
    assert "exhausted" in str(exhausted.value)

    estate = load_estate(root)
    blocks_now = {k: ipam.parse_network(r.council.block) for k, r in estate.councils.items()}
    assert ipam.overlaps({ipam.HUB: hub, **blocks_now}) == []
    assert ipam.overlaps(all_segments(root)) == []
    assert all(b.subnet_of(supernet) for b in blocks_now.values())

    before = snapshot(root)
    result = estate_cmd("onboard", "one-too-many", "--code", "W99999999", "--users", "10")
    assert result.exit_code == 2
    n = len(estate.councils)
    line = fw_line(root, "  supernet: ")
    assert result.stderr.splitlines() == [
        f"framework.yaml:{line}: network.supernet: supernet {supernet} is exhausted: no free "
        f"/{fw.network.council_prefix} block for 'one-too-many' (the hub and {n} councils hold every block)"]
    assert snapshot(root) == before


def fw_line(root: Path, prefix: str) -> int:
    for number, text in enumerate((root / "framework.yaml").read_text(encoding="utf-8").splitlines(), 1):
        if text.startswith(prefix):
            return number
    raise AssertionError(prefix)
