"""The log collector receives over TCP, files by sending host, and keeps logs for the retention."""

import time


def test_listens_on_tcp_514(host):
    assert host.socket("tcp://0.0.0.0:514").is_listening


def _send(host, lines):
    payload = "".join(f"<13>Nov 22 01:00:00 {claimed} estate-test: {text}\\n" for claimed, text in lines)
    host.check_output(
        "python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', 514)); "
        f"s.sendall(b'{payload}'); s.close()\""
    )


def _where(host, marker):
    for _ in range(20):
        found = host.run(f"grep -rl {marker} /var/log/remote/")
        if found.rc == 0:
            return found.stdout.split()
        time.sleep(0.5)
    return []


def test_received_message_is_filed_by_sender_address_not_claimed_hostname(host):
    marker = f"estate-molecule-{time.time_ns()}"
    _send(host, [("b-host01", marker)])  # 127.0.0.1 is council-a's a-host01, whatever it claims
    assert _where(host, marker) == ["/var/log/remote/council-a/a-host01.log"]
    line = host.check_output(f"grep {marker} /var/log/remote/council-a/a-host01.log")
    assert "from=127.0.0.1 claims=b-host01" in line


def test_a_flood_stays_within_twice_the_cap(host):
    marker = f"estate-flood-{time.time_ns()}"
    host.check_output(  # ~2.8 MB from one sender, whose cap is 1 MB
        "python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', 514)); "
        f"[s.sendall(b'<13>Nov 22 01:00:00 a-host01 estate-test: {marker}-%05d %s\\n' % (i, b'x' * 900)) "
        "for i in range(3000)]; s.close()\""
    )
    assert _where(host, f"{marker}-02999")
    live = host.file("/var/log/remote/council-a/a-host01.log").size
    aside = host.file("/var/log/remote/council-a/a-host01.log.1").size
    assert live + aside <= 2 * 1024 * 1024 + 64 * 1024


def test_retention(host):
    rotate = host.file("/etc/logrotate.d/estate-remote").content_string
    assert "maxage 180" in rotate
    assert "rotate 180" in rotate
    unit = host.file("/etc/systemd/system/estate-log-retention.service").content_string
    assert "-mtime +180 -delete" in unit
    assert host.service("estate-log-retention.timer").is_enabled
