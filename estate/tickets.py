"""Findings become tickets (issue 15, item 3): `estate tickets sync` files each failing or expired compliance finding
as one ticket in its council's Request Tracker queue (the hub's in the consortium operations queue), through RT 5's
REST 2 API with the automation user's auth token.

- One ticket per finding, found again by the finding's fingerprint in a ticket custom field (framework.yaml
  `helpdesk.tickets.fingerprint_field`, which the helpdesk role creates on every queue it makes): a second sync
  updates a ticket whose subject or priority changed and never opens a second one. A resolved ticket whose finding
  fails again is reopened (still one ticket per fingerprint).
- Subject `[RULE] resource: message` (the resource's short name; capped at SUBJECT_MAX characters); priority and due
  date from the framework's helpdesk SLA for the rule's severity (`helpdesk.tickets.severity_priority`; the
  resolution hours make Due); the fix, the rule, its control and references in the body.
- A ticket whose finding passes now is resolved with a comment; one whose finding is exempt now, too (saying so). An
  exempt finding opens nothing. A ticket whose finding was not judged in this run (its plane not asked for, or the
  resource gone) is left as it is.
- Before it writes anything the sync checks that the helpdesk answers, takes the token and has every queue it needs:
  otherwise one line naming the endpoint, exit 2, nothing changed. A sync cut off half way is resumed by the next
  one (every step is idempotent).

REST 2 (RT 5.0.3, docs.bestpractical.com/rt/5.0.3/RT/REST2.html): `GET /queue/:name`, `GET /tickets?query=<TicketSQL>`
(with `fields=` and paging by `page`/`per_page`, at most 100), `POST /ticket`, `PUT /ticket/:id`,
`POST /ticket/:id/comment`; auth by the header `Authorization: token <auth string>`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from estate.compliance.findings import Finding, Report
from estate.errors import EstateError
from estate.inventory import inventory_hosts, load_inventory
from estate.models import Framework

HUB = "shared"  # the hub's council key, as estate.controls.base names it
SUBJECT_MAX = 120  # characters of a ticket's subject (RT's Subject column holds 200)
PER_PAGE = 100  # REST 2's largest page (RT::REST2, "Paging")
TOKEN_ENV = "ESTATE_RT_TOKEN"
# RT statuses of the default lifecycle that end a ticket (docs.bestpractical.com/rt/5.0.3/customizing/lifecycles.html)
INACTIVE = frozenset({"resolved", "rejected", "deleted"})
# The files the helpdesk role leaves beside the controller's secrets (roles/helpdesk/tasks/setup.yml)
API_FILE = "rt-api.json"
CA_FILE = "rt-ca.pem"
SECRETS_FILE = "secrets.json"


# --------------------------------------------------------------------------- what the findings want


@dataclass(frozen=True)
class Wanted:
    """One ticket as the findings want it."""

    fingerprint: str
    queue: str
    subject: str
    sla: str  # the SLA level, e.g. "P2"
    priority: int  # RT's numeric priority (100 for the first SLA level, down to 0 for the last)
    resolution_hours: int
    body: str


def queue_of(council: str, framework: Framework) -> str:
    """A council's queue is named by its key (the helpdesk role's queues); the hub's is the operations queue."""
    return framework.helpdesk.tickets.operations_queue if council == HUB else council


def subject(f: Finding) -> str:
    text = " ".join(f"[{f.rule_id}] {f.short_resource}: {f.message}".split())
    return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 3].rstrip() + "..."


def rt_priority(level: str, levels: Sequence[str]) -> int:
    """RT's numeric priority for an SLA level: the first (most urgent) 100, the last 0, evenly between."""
    i = levels.index(level)
    return 100 if len(levels) == 1 else round(100 * (len(levels) - 1 - i) / (len(levels) - 1))


def body(f: Finding, level: str, response_hours: int, resolution_hours: int) -> str:
    refs = f.references
    caf = "; ".join(f"CAF {v}: {', '.join(ids)}" for v, ids in refs["caf"].items() if ids) or "none"
    return "\n".join([
        f"Compliance finding: {f.title}",
        "",
        f"Rule:        {f.rule_id} ({f.severity}, {f.enforcement})",
        f"Control:     {f.control} ({f.clause})",
        f"Council:     {f.council}",
        f"Resource:    {f.resource}" + (f" ({f.path})" if f.path else ""),
        f"Status:      {f.status}",
        f"Message:     {f.message}",
        f"Priority:    {level}: respond within {response_hours} h, resolve within {resolution_hours} h",
        "",
        "Fix:",
        f.fix,
        "",
        f"References:  {caf}; Cyber Essentials: {', '.join(refs['ce']) or 'none'}",
        f"Fingerprint: {f.fingerprint}",
        "",
        "Filed by `estate tickets sync`; it updates this ticket and resolves it when the finding passes.",
    ])


def wanted_tickets(findings: Iterable[Finding], framework: Framework) -> dict[str, Wanted]:
    """Every failing or expired finding as the ticket it wants, by fingerprint."""
    tickets = framework.helpdesk.tickets
    targets = {t.priority: t for t in framework.helpdesk.sla.priorities}
    levels = [t.priority for t in framework.helpdesk.sla.priorities]
    out: dict[str, Wanted] = {}
    for f in findings:
        if not f.failing:
            continue
        level = tickets.severity_priority[f.severity]  # type: ignore[index]
        target = targets[level]
        out[f.fingerprint] = Wanted(f.fingerprint, queue_of(f.council, framework), subject(f), level,
                                    rt_priority(level, levels), target.resolution_hours,
                                    body(f, level, target.response_hours, target.resolution_hours))
    return out


# --------------------------------------------------------------------------- the REST 2 client


class RtClient:
    """The few REST 2 calls the sync makes. Any failure to talk to RT is one EstateError naming the endpoint."""

    def __init__(self, url: str, token: str, context: ssl.SSLContext | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.base = self.url + "/REST/2.0/"
        self._token = token
        self.context = context
        self.timeout = timeout

    def fail(self, message: str) -> EstateError:
        return EstateError.one(self.url, 0, "", message)

    def call(self, method: str, path: str, body: Any = None, ok: Sequence[int] = (200, 201)) -> tuple[int, Any]:
        data = json.dumps(body).encode("utf-8") if body is not None else None
        request = urllib.request.Request(self.base + path, method=method, data=data, headers={
            "Authorization": f"token {self._token}", "Content-Type": "application/json",
            "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=self.timeout) as response:
                status, raw = int(response.status), response.read()
        except urllib.error.HTTPError as err:
            status, raw = int(err.code), err.read()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise self.fail(f"the helpdesk is unreachable ({reason})") from None
        if status == 401:
            raise self.fail("the helpdesk refused the token (401 Unauthorized)")
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode("utf-8", "replace")
        if status not in ok:
            detail = payload.get("message") if isinstance(payload, dict) else None
            raise self.fail(f"{method} {path.split('?')[0]}: HTTP {status}" + (f" ({detail})" if detail else ""))
        return status, payload

    def queue_exists(self, name: str) -> bool:
        status, payload = self.call("GET", "queue/" + urllib.parse.quote(name, safe=""), ok=(200, 403, 404))
        if status == 403:
            raise self.fail(f"queue {name!r}: the token's user may not see it (403)")
        # a disabled queue answers too; the sync files nothing into one
        return status == 200 and not (isinstance(payload, dict) and str(payload.get("Disabled", "0")) == "1")

    def search(self, ticketsql: str, fields: str) -> list[dict[str, Any]]:
        """Every ticket the TicketSQL finds (all pages), with these fields."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            query = urllib.parse.urlencode({"query": ticketsql, "fields": fields, "fields[Queue]": "Name",
                                            "per_page": PER_PAGE, "page": page})
            _, payload = self.call("GET", "tickets?" + query)
            if not isinstance(payload, dict):
                raise self.fail("a ticket search answered no JSON object")
            items.extend(payload.get("items") or [])
            if page >= int(payload.get("pages") or 1):
                return items
            page += 1

    def create(self, fields: Mapping[str, Any]) -> str:
        _, payload = self.call("POST", "ticket", dict(fields))
        return str(payload["id"]) if isinstance(payload, dict) else ""

    def update(self, ticket: str, fields: Mapping[str, Any]) -> None:
        self.call("PUT", f"ticket/{ticket}", dict(fields))

    def comment(self, ticket: str, text: str) -> None:
        self.call("POST", f"ticket/{ticket}/comment", {"Content": text, "ContentType": "text/plain"})


def sql_string(value: str) -> str:
    """A TicketSQL string literal (single quotes, backslash escapes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --------------------------------------------------------------------------- the sync


@dataclass(frozen=True)
class Held:
    """A ticket RT holds for a fingerprint."""

    id: str
    queue: str
    subject: str
    status: str
    sla: str

    @property
    def active(self) -> bool:
        return self.status not in INACTIVE


@dataclass
class Tally:
    opened: int = 0
    updated: int = 0
    unchanged: int = 0
    resolved: int = 0


@dataclass
class Summary:
    queues: dict[str, Tally] = field(default_factory=dict)

    def tally(self, queue: str) -> Tally:
        return self.queues.setdefault(queue, Tally())

    def lines(self) -> list[str]:
        out = [f"{'queue':<24} {'opened':>7} {'updated':>8} {'unchanged':>10} {'resolved':>9}"]
        for name, t in sorted(self.queues.items()):
            out.append(f"{name:<24} {t.opened:>7} {t.updated:>8} {t.unchanged:>10} {t.resolved:>9}")
        return out


def fingerprint_of(item: Mapping[str, Any], cf_name: str) -> str | None:
    for cf in item.get("CustomFields") or []:
        if isinstance(cf, dict) and cf.get("name") == cf_name and cf.get("values"):
            return str(cf["values"][0])
    return None


def held_tickets(client: RtClient, queue: str, cf_name: str) -> dict[str, Held]:
    """The queue's tickets that carry a fingerprint, one per fingerprint (the lowest id, should RT hold two)."""
    # TicketSQL on a custom field: 'CF.{Name}' IS NOT NULL (docs.bestpractical.com/rt/5.0.3/query_builder.html)
    sql = f"Queue = {sql_string(queue)} AND {sql_string('CF.{' + cf_name + '}')} IS NOT NULL"
    held: dict[str, Held] = {}
    for item in sorted(client.search(sql, "Subject,Status,SLA,Queue,CustomFields"), key=lambda i: int(i["id"])):
        fp = fingerprint_of(item, cf_name)
        if fp is None or fp in held:
            continue
        q = item.get("Queue")
        held[fp] = Held(str(item["id"]), str(q.get("Name", queue)) if isinstance(q, dict) else queue,
                        str(item.get("Subject") or ""), str(item.get("Status") or ""), str(item.get("SLA") or ""))
    return held


def due(hours: int, now: dt.datetime) -> str:
    """RT's date format for a ticket field, in UTC (RT::Date, Format ISO)."""
    return (now + dt.timedelta(hours=hours)).astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def resolution_note(f: Finding) -> str:
    if f.status == "exempt" and f.exemption is not None:
        ex = f.exemption
        return (f"Resolved by estate tickets sync: the finding is now exempt ({ex.reason}; approved by "
                f"{ex.approver}, until {ex.expires.isoformat()}).")
    return f"Resolved by estate tickets sync: the finding passes now ({f.rule_id} on {f.short_resource})."


def sync(client: RtClient, report: Report, framework: Framework, *, councils: Sequence[str] | None = None,
         now: dt.datetime | None = None) -> Summary:
    """Bring the queues of `councils` (default: every council the report judged, and the hub) in line with the
    report's findings. Checks every queue before it changes anything."""
    when = now or dt.datetime.now(dt.UTC)
    cf_name = framework.helpdesk.tickets.fingerprint_field
    keys = list(councils) if councils is not None else list(report.councils)
    queues = list(dict.fromkeys(queue_of(k, framework) for k in keys))
    client.call("GET", "queues/all")  # reachable, and the token is taken
    for queue in queues:
        if not client.queue_exists(queue):
            raise client.fail(f"queue {queue!r} does not exist (run `estate configure` for the helpdesk)")
    findings = [f for k in keys if k in report.councils for f in report.councils[k].findings]
    wanted = wanted_tickets(findings, framework)
    settled = {f.fingerprint: f for f in findings if f.status in ("pass", "exempt")}
    summary = Summary()
    for queue in queues:
        tally = summary.tally(queue)
        held = held_tickets(client, queue, cf_name)
        for fp, want in sorted((fp, w) for fp, w in wanted.items() if w.queue == queue):
            have = held.get(fp)
            fields = {"Subject": want.subject, "Priority": want.priority, "SLA": want.sla}
            if have is None:
                client.create({"Queue": queue, **fields, "Due": due(want.resolution_hours, when),
                               "Content": want.body, "ContentType": "text/plain",
                               "CustomFields": {cf_name: fp}})
                tally.opened += 1
            elif not have.active:
                client.update(have.id, {**fields, "Status": "open", "Due": due(want.resolution_hours, when)})
                client.comment(have.id, "Reopened by estate tickets sync: the finding fails again.\n\n" + want.body)
                tally.updated += 1
            elif have.subject != want.subject or have.sla != want.sla:
                change = dict(fields)
                if have.sla != want.sla:
                    change["Due"] = due(want.resolution_hours, when)
                client.update(have.id, change)
                client.comment(have.id, "Updated by estate tickets sync: the finding changed.\n\n" + want.body)
                tally.updated += 1
            else:
                tally.unchanged += 1
        for fp, have in sorted(held.items()):
            if fp in wanted or not have.active or fp not in settled:
                continue
            client.comment(have.id, resolution_note(settled[fp]))
            client.update(have.id, {"Status": "resolved"})
            tally.resolved += 1
    return summary


def duplicates(client: RtClient, queue: str, cf_name: str) -> Counter[str]:
    """How many tickets the queue holds per fingerprint (the tests' check that nothing is duplicated)."""
    sql = f"Queue = {sql_string(queue)} AND {sql_string('CF.{' + cf_name + '}')} IS NOT NULL"
    return Counter(fp for item in client.search(sql, "CustomFields")
                   if (fp := fingerprint_of(item, cf_name)) is not None)


# --------------------------------------------------------------------------- the endpoint and the token


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str
    context: ssl.SSLContext | None


def tls_context(ca_file: Path | None, insecure: bool, pinned: bool) -> ssl.SSLContext:
    """HTTPS: verify against `ca_file` (the lab's self-signed certificate is its own trust anchor: partial chains
    allowed, and with `pinned` the host name is not checked, the certificate naming the container, not the address
    the controller reaches it at), or the system's CAs; `insecure` (an explicit flag) verifies nothing."""
    if insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if ca_file is not None:
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        context.check_hostname = not pinned
    return context


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.exists():
        raise EstateError.one(path, 0, "", f"no {what} here: run `estate configure` on the lab first, or pass "
                                           f"--url with {TOKEN_ENV} set")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EstateError.one(path, 0, "", f"unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise EstateError.one(path, 0, "", f"unreadable {what}: not a JSON object")
    return data


def endpoint(root: Path, *, url: str | None, inventory: Path, state: Path, ca_file: Path | None = None,
             insecure: bool = False, environ: Mapping[str, str] | None = None) -> Endpoint:
    """Where the helpdesk is and the token to show it. The token: ${ESTATE_RT_TOKEN} (production), else the lab's,
    made of the automation user's id (rt-api.json, which the helpdesk role leaves under .state/configure/) and the
    token's secret (secrets.json, mode 0600): never a command-line argument. The URL: `url`, else the lab
    inventory's helpdesk host."""
    env = os.environ if environ is None else environ
    api: dict[str, Any] | None = None
    token = env.get(TOKEN_ENV, "")
    if not token:
        api = _read_json(state / API_FILE, "helpdesk API file")
        secret = _read_json(state / SECRETS_FILE, "secrets file").get("helpdesk_api_token")
        if not isinstance(secret, str) or not secret or not isinstance(api.get("user_id"), int):
            raise EstateError.one(state / SECRETS_FILE, 0, "helpdesk_api_token",
                                  "no helpdesk token: run `estate configure` on the lab first")
        token = f"1-{api['user_id']}-{secret}"  # RT::AuthToken's auth string, version 1
    pinned = False
    if url is None:
        api = api if api is not None else _read_json(state / API_FILE, "helpdesk API file")
        hosts = inventory_hosts(load_inventory(inventory))
        helpdesk = sorted(name for name, h in hosts.items() if "helpdesk" in h["groups"])
        if not helpdesk:
            raise EstateError.one(inventory, 0, "", "no host in the inventory's helpdesk group: pass --url")
        address = hosts[helpdesk[0]]["vars"].get("ansible_host", helpdesk[0])
        url = f"https://{address}{api.get('web_path', '')}"
        if ca_file is None and not insecure:
            ca_file, pinned = state / CA_FILE, True
            if not ca_file.exists():
                raise EstateError.one(ca_file, 0, "", "no helpdesk certificate here: run `estate configure` on "
                                                      "the lab first, or pass --ca-file or --insecure")
    elif not url.startswith("https://") and not insecure:
        raise EstateError.one("--url", 0, "", f"{url!r} is not https:// (the token would travel in clear)")
    return Endpoint(url, token, tls_context(ca_file, insecure, pinned))


def lab_state(root: Path) -> Path:
    """Where `estate configure` keeps the secrets and the helpdesk role leaves rt-api.json and rt-ca.pem."""
    return root / ".state" / "configure"
