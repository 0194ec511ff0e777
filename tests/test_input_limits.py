"""Bounded work and only real input (issue #17 items 1, 3, 5, 6 and 8, the input half).

Every refusal here is one line and exit code 2: a billion laughs, nesting past the cap, a FIFO or a device
where a file belongs, a file larger than its kind could ever be, an inventories/ that is missing or holds a
folder that is not a council, NaN, infinity and booleans where a number is meant, control characters in
free text, a trailing newline after a pattern. Where the old code would hang or eat memory, the command runs
in a child process under a memory cap and a timeout, so a regression fails the test rather than the machine.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from estate import cli
from estate.cli import app
from estate.errors import EstateError
from estate.models import Exemption, Vlan, is_council_key
from estate.onboard import Request, check_request
from estate.yamlsrc import (
    LIMIT_COUNCIL,
    LIMIT_CSV,
    MAX_DEPTH,
    MAX_VALUES,
    control_character,
    load_json,
    load_json_list,
    parse,
    parse_json,
    read_text_bounded,
)

cli._register_extensions()  # check, onboard
ESTATE = Path(sys.executable).parent / "estate"
MEMORY_CAP = 1 << 30  # the child's address space: the old code's expansion would pass it


def _validate() -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["validate"])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr.strip().splitlines()


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _validate_in_child(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`estate validate` in a child process under MEMORY_CAP; the timeout only stops a hang from stopping the suite."""
    return subprocess.run([str(ESTATE), "validate"], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ESTATE_ROOT": ""}, preexec_fn=_capped, check=False)


def _council(repo: Path, key: str = "newham") -> Path:
    return repo / "inventories" / key / "council.yml"


# --------------------------------------------------------------------------- YAML: aliases, nesting, values


def test_an_alias_is_built_once_and_shared() -> None:
    src = parse("a: &a {x: [1, 2]}\nb: *a\nc: [*a, *a]\n", "f.yml")
    assert src.data["b"] is src.data["a"]
    assert src.data["c"][0] is src.data["a"]
    assert src.data == {"a": {"x": [1, 2]}, "b": {"x": [1, 2]}, "c": [{"x": [1, 2]}, {"x": [1, 2]}]}


def _laughs(levels: int) -> str:
    return "lol0: &l0 [" + ", ".join(["lol"] * 10) + "]\n" + "".join(
        f"lol{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]\n" for i in range(1, levels))


def test_the_node_budget_counts_an_alias_at_every_use() -> None:
    parse(_laughs(5), "f.yml")  # 111,111 values expanded: within the budget
    with pytest.raises(EstateError) as err:
        parse(_laughs(6), "f.yml")
    assert str(err.value) == (f"f.yml:6: lol5: more than {MAX_VALUES:,} values once its aliases are expanded "
                              "(an alias is counted at every use)")


def test_a_billion_laughs_is_one_line_in_a_capped_process(repo_copy: Path) -> None:
    council = _council(repo_copy)
    lol5 = len(council.read_text(encoding="utf-8").splitlines()) + 6
    with council.open("a", encoding="utf-8") as fh:
        fh.write(_laughs(9))  # 10**9 strings once expanded
    proc = _validate_in_child(repo_copy)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"inventories/newham/council.yml:{lol5}: lol5: more than 1,000,000 values once its aliases are expanded "
        "(an alias is counted at every use)"]


@pytest.mark.parametrize(("text", "line"), [("a: " + "[" * 100_000 + "]" * 100_000, 1),
                                          ("".join(" " * i + "a:\n" for i in range(200)) + " " * 200 + "a: 1\n",
                                           MAX_DEPTH + 1)])
def test_deep_nesting_is_one_line_never_a_crash(repo_copy: Path, text: str, line: int) -> None:
    # 100,000 levels: a RecursionError in Python's composer, a segmentation fault in libyaml's binding.
    hosts = repo_copy / "inventories" / "newham" / "hosts.yml"
    hosts.write_text(text, encoding="utf-8")
    proc = _validate_in_child(repo_copy)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [f"inventories/newham/hosts.yml:{line}: nested deeper than {MAX_DEPTH} levels"]


@pytest.mark.parametrize(("value", "shown"), [(".nan", "'.nan'"), (".inf", "'.inf'"), ("-.Inf", "'-.Inf'"),
                                              ("1.0e+309", "'1.0e+309'")])
def test_a_non_finite_number_in_yaml_is_refused(value: str, shown: str) -> None:
    with pytest.raises(EstateError) as err:
        parse(f"x:\n  y: {value}\n", "f.yml")
    assert str(err.value) == f"f.yml:2: x.y: {shown} is not a finite number"


@pytest.mark.parametrize(("escaped", "code"), [("\\n", "000A"), ("\\0", "0000"), ("\\e", "001B"), ("\\x7f", "007F"),
                                               ("\\x85", "0085"), ("\\u200b", "200B"), ("\\u2028", "2028"),
                                               ("\\t", "0009"), ("\\r", "000D"), ("\\ud800", "D800")])
def test_control_characters_are_refused_in_values_and_keys(escaped: str, code: str) -> None:
    with pytest.raises(EstateError) as err:
        parse(f'a:\n  b: "x{escaped}y"\n', "f.yml")
    assert str(err.value) == (f"f.yml:2: a.b: control character U+{code} at character 2: "
                              "free text is one line of printable characters")
    with pytest.raises(EstateError, match=f"U\\+{code}"):
        parse(f'"k{escaped}": 1\n', "f.yml")


def test_printable_text_in_any_script_is_kept() -> None:
    text = "Cyngor Sir Ynys Môn, Gwasanaethau\u00a0TG \u2013 🙂"
    assert control_character(text) is None
    assert parse(f"name: {text}\n", "f.yml").data == {"name": text}


def test_a_block_scalar_with_a_newline_is_refused() -> None:
    # No field of framework.yaml or an inventory holds more than one line (none uses `|` or `>`).
    with pytest.raises(EstateError, match=r"^f.yml:1: description: control character U\+000A"):
        parse("description: |\n  one\n  two\n", "f.yml")


def test_tags_merges_and_collection_keys_are_refused() -> None:
    cases = {
        "a: !!python/object/apply:os.system [id]": "f.yml:1: a: the tag 'tag:yaml.org,2002:python/object/appl... "
                                                   "is not read: plain mappings and lists only",
        "a: &a {x: 1}\nb: {<<: *a}": "f.yml:2: b: YAML merge keys (<<) are not read: write the fields out",
        "? [1, 2]\n: 3": "f.yml:1: mapping key a collection is not a string",
    }
    for text, line in cases.items():
        with pytest.raises(EstateError) as err:
            parse(text, "f.yml")
        assert str(err.value) == line


def test_an_error_does_not_echo_the_file() -> None:
    secret = "s3cr3t-" + "x" * 200
    for text in (f"when: !!timestamp '{secret}'", f"a: !!{secret} [1]", f"a: *{secret}"):
        with pytest.raises(EstateError) as err:
            parse(text, "f.yml")
        assert secret not in str(err.value)
        assert len(str(err.value)) < 200


# --------------------------------------------------------------------------- files: kind and size


def test_a_fifo_where_a_file_belongs_is_refused_not_waited_on(repo_copy: Path) -> None:
    hosts = repo_copy / "inventories" / "newham" / "hosts.yml"
    hosts.unlink()
    os.mkfifo(hosts)
    proc = _validate_in_child(repo_copy)  # the old code blocks in open() until a writer comes
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["inventories/newham/hosts.yml: a FIFO, not a file: refused (not waited on)"]


@pytest.mark.parametrize(("target", "kind"), [("/dev/null", "a link to a character device"),
                                              (".", "a link to a folder")])
def test_a_device_or_folder_where_a_file_belongs_is_refused(repo_copy: Path, target: str, kind: str) -> None:
    council = _council(repo_copy)
    council.unlink()
    council.symlink_to(target)
    assert _validate() == (2, [f"inventories/newham/council.yml: {kind}, not a file: refused (not waited on)"])


def test_a_link_to_nothing_where_a_file_belongs_is_named(repo_copy: Path) -> None:
    hosts = repo_copy / "inventories" / "newham" / "hosts.yml"
    hosts.unlink()
    hosts.symlink_to("gone.yml")  # the old code skipped it: the council had no hosts
    assert _validate() == (2, ["inventories/newham/hosts.yml: a link to a missing file"])


def test_a_council_file_larger_than_any_real_one_is_refused_by_its_size(repo_copy: Path) -> None:
    with _council(repo_copy).open("r+b") as fh:
        fh.truncate(LIMIT_COUNCIL + 1)  # sparse: no disk used
    assert _validate() == (2, [f"inventories/newham/council.yml: {LIMIT_COUNCIL + 1:,} bytes: larger than the "
                               "8 MiB this file could ever be"])


def test_read_text_bounded_stops_at_the_limit_and_names_a_bad_byte(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "f.txt"
    path.write_bytes(b"0123456789")
    assert read_text_bounded(path, 10) == "0123456789"
    with pytest.raises(EstateError, match=r"^f.txt: 10 bytes: larger than the 9 bytes this file could ever be$"):
        read_text_bounded(path, 9)
    path.write_bytes(b"ok\nok\n\xff rest")
    with pytest.raises(EstateError, match=r"^f.txt:3: not UTF-8 text: byte 0xff at offset 6$"):
        read_text_bounded(path, 100)


# --------------------------------------------------------------------------- JSON (state exports, facts, history)


@pytest.mark.parametrize(("text", "line"), [
    ("[1, NaN]", "x.json: 'NaN' is not a finite number"),
    ('{"a": -Infinity}', "x.json: '-Infinity' is not a finite number"),
    ('{"maxSessionLimit": 1e309}', "x.json: '1e309' is not a finite number"),
    ("[" * 100_000 + "]" * 100_000, f"x.json: nested deeper than {MAX_DEPTH} levels"),
    ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
     f"x.json: [0][0][0][0][0][0][0][0]...: nested deeper than {MAX_DEPTH} levels"),
    ('{"a": 1,}', "x.json:1: not JSON: Expecting property name enclosed in double quotes (column 9)"),
])
def test_json_refuses_non_finite_numbers_and_deep_nesting(text: str, line: str) -> None:
    with pytest.raises(EstateError) as err:
        parse_json(text, "x.json")
    assert str(err.value) == line


def test_json_files_are_read_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fifo = tmp_path / "facts.json"
    os.mkfifo(fifo)
    with pytest.raises(EstateError, match=r"^facts.json: a FIFO, not a file"):
        load_json_list(fifo, "a JSON list of host facts")
    big = tmp_path / "state.json"
    big.write_text("[1, 2.5]", encoding="utf-8")
    assert load_json(big) == [1, 2.5]
    with pytest.raises(EstateError, match=r"^state.json: 8 bytes: larger than the 7 bytes"):
        load_json(big, 7)


# --------------------------------------------------------------------------- inventories/: only real councils


def test_an_inventories_file_beside_the_folders_is_left_alone(repo_copy: Path) -> None:
    (repo_copy / "inventories" / "estate.yml").write_text("plugin: estate\n", encoding="utf-8")
    assert _validate()[0] == 0


@pytest.mark.parametrize("what", ["missing", "dangling", "file"])
def test_no_inventories_folder_is_an_error_not_a_pass_over_nothing(repo_copy: Path, what: str) -> None:
    inv = repo_copy / "inventories"
    shutil.rmtree(inv)
    if what == "dangling":
        inv.symlink_to("elsewhere")
    elif what == "file":
        inv.write_text("", encoding="utf-8")
    said = {"missing": "missing", "dangling": "a link to nothing", "file": "not a folder"}[what]
    expected = [f"inventories: the councils' folder is {said}: there is nothing to judge "
                "(it holds one folder per council and `shared` for the hub)"]
    assert _validate() == (2, expected)
    result = CliRunner().invoke(app, ["check"])
    assert (result.exit_code, result.stderr.strip().splitlines()) == (2, expected)


@pytest.mark.parametrize("name", ["Camden", "camden council", "camden$", ".camden", "camden\n", "-camden",
                                  "camden-", "c" * 41])
def test_a_folder_not_named_by_a_council_key_is_refused(repo_copy: Path, name: str) -> None:
    shutil.copytree(repo_copy / "inventories" / "newham", repo_copy / "inventories" / name)
    shown = name.replace("\n", "\\n")
    assert _validate() == (2, [f"inventories/{shown}: {name!r} is not a council key (lower-case letters, digits and "
                               "'-', 2 to 40 characters): rename the folder or move it out of inventories/"])


def test_a_link_to_another_council_names_itself(repo_copy: Path) -> None:
    (repo_copy / "inventories" / "camden").symlink_to("newham")
    assert _validate() == (2, ["inventories/camden: a link to inventories/newham: one council's folder under two keys"])
    (repo_copy / "inventories" / "camden").unlink()
    (repo_copy / "inventories" / "zz-loop").symlink_to("zz-loop")
    assert _validate() == (2, ["inventories/zz-loop: a link to nothing (or a loop of links)"])


def test_the_key_rule_is_the_whole_name() -> None:
    assert is_council_key("waltham-forest")
    assert is_council_key("shared")
    for bad in ("newham\n", "Newham", "new ham", "a", "newham-", "x" * 41):
        assert not is_council_key(bad)


# --------------------------------------------------------------------------- numbers and text in the spec


def _framework_case(repo: Path, pattern: str, replacement: str) -> list[str]:
    path = repo / "framework.yaml"
    text, n = re.subn(pattern, replacement, path.read_text(encoding="utf-8"), count=1, flags=re.M)
    assert n == 1
    path.write_text(text, encoding="utf-8")
    code, lines = _validate()
    assert code == 2
    return [re.sub(r"^framework.yaml:\d+: ", "", line) for line in lines]


@pytest.mark.parametrize(("pattern", "replacement", "expected"), [
    (r"^(\s+concurrency:).*$", r"\1 .nan", "desktop.avd.concurrency: '.nan' is not a finite number"),
    (r"^(\s+face_to_face:).*$", r"\1 .inf", "migration.channel_shift.face_to_face: '.inf' is not a finite number"),
    (r"^(\s+max_sessions_per_host:).*$", r"\1 true", "desktop.avd.max_sessions_per_host: Input should be a valid "
                                                     "integer"),
    (r"^(\s+description:).*$", r'\1 "thin clients\\n    chain forward { accept }"',
     "network.flows[0].description: control character U+000A at character 13: free text is one line of printable "
     "characters"),
])
def test_framework_numbers_are_finite_and_text_is_one_line(repo_copy: Path, pattern: str, replacement: str,
                                                           expected: str) -> None:
    assert _framework_case(repo_copy, pattern, replacement) == [expected]


def test_models_refuse_non_finite_and_boolean_numbers() -> None:
    base = {"id": 10, "name": "servers", "prefix": 24, "purpose": "x"}
    for bad in ({"id": True}, {"prefix": 24.0}, {"id": float("nan")}):
        with pytest.raises(ValidationError):
            Vlan.model_validate({**base, **bad})
    from estate.models import Transactions
    with pytest.raises(ValidationError, match="finite number"):
        Transactions.model_validate({"face_to_face": 1, "phone": 1, "web": 1, "web_share_target": float("nan")})


# --------------------------------------------------------------------------- patterns: the whole value


def test_a_trailing_newline_does_not_pass_a_pattern(estate: object) -> None:
    from estate.models import _port
    with pytest.raises(ValueError, match="a port is a number"):
        _port("443\n")  # re.match with `$` let it through
    with pytest.raises(ValidationError):
        Exemption.model_validate({"rule": "DCN-004\n", "reason": "r", "contract": "NWM-C01",
                                  "expires": yaml.safe_load("2027-01-01"), "owner": "o", "approver": "a"})
    from estate.loader import Estate
    assert isinstance(estate, Estate)
    with pytest.raises(EstateError) as err:
        check_request(estate, Request(key="camden\n", code="E09000007\n", users=10))
    assert [str(p) for p in err.value.problems] == [
        "estate onboard: --code: 'E09000007\\n' is not a GSS code (E, N, S or W then eight digits)",
        "estate onboard: NAME: 'camden\\n' is not a council key (lower-case letters, digits and '-', 2 to 40 "
        "characters)",
    ]


# --------------------------------------------------------------------------- the onboard CSV importer


CONTRACTS_HEADER = "id,supplier,area,description,annual_cost,start,end"


@pytest.mark.parametrize(("cell", "line"), [
    ("nan", "contracts.csv:2: annual_cost: 'nan' is not a finite number"),
    ("inf", "contracts.csv:2: annual_cost: 'inf' is not a finite number"),
    ("1e309", "contracts.csv:2: annual_cost: '1e309' is not a finite number"),
    ("true", "contracts.csv:2: annual_cost: 'true' is not a number"),
])
def test_csv_numbers_are_finite(repo_copy: Path, cell: str, line: str) -> None:
    (repo_copy / "contracts.csv").write_text(
        f"{CONTRACTS_HEADER}\nRDB-C01,Acme,network,links,{cell},2024-01-01,2027-01-01\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["onboard", "redbridge", "--code", "E09000026", "--users", "10",
                                      "--contracts", "contracts.csv"])
    assert (result.exit_code, result.stderr.strip().splitlines()) == (2, [line])
    assert not (repo_copy / "inventories" / "redbridge").exists()


def test_csv_cells_are_one_line_of_text(repo_copy: Path) -> None:
    (repo_copy / "contracts.csv").write_text(
        f'{CONTRACTS_HEADER}\nRDB-C01,Acme,network,"links\n# injected",10,2024-01-01,2027-01-01\n'
        "RDB-C02,Ac\x1bme,network,links,10,2024-01-01,2027-01-01\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["onboard", "redbridge", "--code", "E09000026", "--users", "10",
                                      "--contracts", "contracts.csv"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "contracts.csv:3: description: control character U+000A at character 6: free text is one line of printable "
        "characters",
        "contracts.csv:4: supplier: control character U+001B at character 3: free text is one line of printable "
        "characters",
    ]


def test_a_csv_larger_than_any_register_is_refused(repo_copy: Path) -> None:
    with (repo_copy / "register.csv").open("wb") as fh:
        fh.truncate(LIMIT_CSV + 1)
    result = CliRunner().invoke(app, ["onboard", "redbridge", "--code", "E09000026", "--users", "10",
                                      "--assets", "register.csv"])
    assert (result.exit_code, result.stderr.strip().splitlines()) == (
        2, [f"register.csv: {LIMIT_CSV + 1:,} bytes: larger than the 4 MiB this file could ever be"])


def test_contract_patterns_match_the_whole_value() -> None:
    from estate.contract import rules
    assert rules._port_ok("443")
    assert not rules._port_ok("443\n")  # `re.match` with `$` let it through
    assert rules._COMPUTER_NAME.fullmatch("nwm-app01")
    assert not rules._COMPUTER_NAME.fullmatch("nwm-app01\n")


# --------------------------------------------------------------------------- one line for a root that is wrong


@pytest.mark.parametrize(("rel", "text", "line"), [
    ("framework.yaml", "1: 2\n", "framework.yaml:1: [1]: the key 1 is not text: a field name is"),
    ("inventories/newham/council.yml", "1: 2\n",
     "inventories/newham/council.yml:1: [1]: the key 1 is not text: a field name is"),
    ("inventories/newham/hosts.yml", "hosts: []\n7: x\n",
     "inventories/newham/hosts.yml:2: [7]: the key 7 is not text: a field name is"),
    ("inventories/newham/hosts.yml", "hosts:\n  - name: nwm-x\n    3: 4\n",
     "inventories/newham/hosts.yml:3: hosts[0][3]: the key 3 is not text: a field name is"),
    ("inventories/newham/council.yml", "colour: blue\nshape: round\n",
     "inventories/newham/council.yml:1: no field of this file at the top level (2 keys, none a field name): "
     "expected name, code, block, users, assets, contracts, ..."),
])
def test_a_document_that_is_not_this_kind_of_file_is_one_line(repo_copy: Path, rel: str, text: str,
                                                               line: str) -> None:
    (repo_copy / rel).write_text(text, encoding="utf-8")  # was: one line per missing field (11 for framework.yaml)
    assert _validate() == (2, [line])


def test_missing_fields_of_a_recognisable_file_are_still_each_named(repo_copy: Path) -> None:
    (repo_copy / "inventories" / "newham" / "hosts.yml").write_text("hosts:\n  - name: nwm-x\n", encoding="utf-8")
    assert _validate() == (2, ["inventories/newham/hosts.yml:2: hosts[0].role: Field required",
                               "inventories/newham/hosts.yml:2: hosts[0].vlan: Field required"])


# --------------------------------------------------------------------------- framework.yaml that is not a file


@pytest.mark.parametrize(("make", "line"), [
    (lambda p: os.mkfifo(p), "framework.yaml: a FIFO, not a file: refused (not waited on)"),
    (lambda p: p.mkdir(), "framework.yaml: a folder, not a file: refused (not waited on)"),
    (lambda p: p.symlink_to("framework.yaml"), "framework.yaml: a loop of links: refused"),
    (lambda p: p.symlink_to("/dev/null"), "framework.yaml: a link to a character device, not a file: refused "
                                          "(not waited on)"),
    (lambda p: p.symlink_to("/dev/zero"), "framework.yaml: a link to a character device, not a file: refused "
                                          "(not waited on)"),
    (lambda p: p.symlink_to("gone.yaml"), "framework.yaml: a link to a missing file"),
])
def test_a_framework_yaml_that_is_not_a_file_is_named_not_searched_past(
        repo_copy: Path, make: Callable[[Path], None], line: str) -> None:
    framework = repo_copy / "framework.yaml"
    framework.unlink()
    make(framework)  # the old code went on upward and said `/abs/path: no framework.yaml here or above`
    proc = _validate_in_child(repo_copy)  # a FIFO is never opened: a regression would hang until the timeout
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [line])


def test_no_framework_yaml_anywhere_shows_no_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ESTATE_ROOT", raising=False)
    assert _validate() == (2, [".: no framework.yaml here or above (set ESTATE_ROOT)"])


# --------------------------------------------------------------------------- a CSV header: one line, never echoed


SECRET = "SECRET-9f8e7d6c"


@pytest.mark.parametrize(("header", "line"), [
    (f"{SECRET}\n", "register.csv:1: header: an unknown column (column 1); known: category, name, kind, role, os, "
     "version, count, managed_by, location, region, sku, encrypted, backed_up, public_ip, vendor, model, "
     "end_of_support, shared_queue"),
    (f"category,{SECRET},pass=hunter2,x\n", "register.csv:1: header: 3 unknown columns (the first is column 2); "
     "known: category, name, kind, role, os, version, count, managed_by, location, region, sku, encrypted, "
     "backed_up, public_ip, vendor, model, end_of_support, shared_queue"),
    ("category,name,category\n", "register.csv:1: category: duplicate column (columns 1 and 3)"),
    ("name,kind\n", "register.csv:1: category: missing column"),
])
def test_a_wrong_csv_header_is_one_line_that_does_not_echo_the_file(repo_copy: Path, header: str,
                                                                    line: str) -> None:
    (repo_copy / "register.csv").write_text(header, encoding="utf-8")
    result = CliRunner().invoke(app, ["onboard", "redbridge", "--code", "E09000026", "--users", "10",
                                      "--assets", "register.csv"])
    assert (result.exit_code, result.stderr.strip().splitlines()) == (2, [line])
    assert SECRET not in result.output and "hunter2" not in result.output
    assert not (repo_copy / "inventories" / "redbridge").exists()


def test_contracts_missing_columns_are_one_line(repo_copy: Path) -> None:
    (repo_copy / "contracts.csv").write_text("id,supplier,area\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["onboard", "redbridge", "--code", "E09000026", "--users", "10",
                                      "--contracts", "contracts.csv"])
    assert (result.exit_code, len(result.stderr.strip().splitlines())) == (2, 1)
    assert result.stderr.startswith("contracts.csv:1: ")
    assert "missing column (also missing: " in result.stderr
