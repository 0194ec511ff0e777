"""The helpdesk: RT 5 over HTTPS, a queue per council that only that council's agents see."""

import json
import shlex

# Runs inside the host (python3 of the image): one REST 2 call, prints the status and the body.
CLIENT = """
import base64, json, ssl, sys, urllib.error, urllib.request
user, password, method, path, body = json.loads(sys.argv[1])
request = urllib.request.Request("https://127.0.0.1/rt/REST/2.0/" + path, method=method,
    data=None if body is None else json.dumps(body).encode(),
    headers={"Content-Type": "application/json",
             "Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()})
try:
    with urllib.request.urlopen(request, context=ssl._create_unverified_context(), timeout=30) as reply:
        status, text = reply.status, reply.read().decode()
except urllib.error.HTTPError as err:
    status, text = err.code, err.read().decode()
print(json.dumps([status, text]))
"""


def rest(host, user, password, method, path, body=None):
    args = json.dumps([user, password, method, path, body])
    status, text = json.loads(host.check_output(f"python3 -c {shlex.quote(CLIENT)} {shlex.quote(args)}"))
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


def test_services_run(host):
    assert host.service("rt5-fcgi").is_running
    assert host.service("nginx").is_running
    assert host.socket("tcp://0.0.0.0:443").is_listening


def test_ticket_in_a_queue_is_invisible_to_the_other_council(host):
    status, ticket = rest(host, "estate-automation", "molecule-rest-password", "POST", "ticket",
                          {"Queue": "council-a", "Subject": "molecule segregation check"})
    assert status == 201, ticket
    tid = ticket["id"]
    status, seen = rest(host, "council-a-agent", "council-a-password", "GET", f"ticket/{tid}")
    assert status == 200 and seen["Subject"] == "molecule segregation check"
    status, _ = rest(host, "council-b-agent", "council-b-password", "GET", f"ticket/{tid}")
    assert status == 403
    status, found = rest(host, "council-b-agent", "council-b-password", "GET", "tickets?query=id%3E0")
    assert status == 200 and found["count"] == 0
    status, found = rest(host, "council-a-agent", "council-a-password", "GET", "tickets?query=id%3E0")
    assert status == 200 and [t["id"] for t in found["items"]] == [str(tid)]


def test_sla_and_categories(host):
    conf = host.file("/etc/request-tracker5/RT_SiteConfig.d/70-estate.pm").content_string
    assert "'P1' => {" in conf and "RealMinutes => 240" in conf
    assert "Default => 'P3'" in conf
    status, queue = rest(host, "estate-automation", "molecule-rest-password", "GET", "queue/council-a")
    assert status == 200 and queue["SLADisabled"] in (0, "0")
