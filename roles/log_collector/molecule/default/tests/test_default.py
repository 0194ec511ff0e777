"""The log collector receives over TCP, files by sending host, and keeps logs for the retention."""

import time


def test_listens_on_tcp_514(host):
    assert host.socket("tcp://0.0.0.0:514").is_listening


def test_received_message_is_filed_by_host(host):
    marker = f"estate-molecule-{time.time_ns()}"
    host.check_output(
        "python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', 514)); "
        f"s.sendall(b'<13>Nov 22 01:00:00 sender-host estate-test: {marker}\\n'); s.close()\""
    )
    for _ in range(20):
        found = host.run(f"grep -rl {marker} /var/log/remote/")
        if found.rc == 0:
            break
        time.sleep(0.5)
    assert found.stdout.strip() == "/var/log/remote/sender-host/estate-test.log"


def test_retention(host):
    rotate = host.file("/etc/logrotate.d/estate-remote").content_string
    assert "maxage 180" in rotate
    assert "rotate 180" in rotate
    unit = host.file("/etc/systemd/system/estate-log-retention.service").content_string
    assert "-mtime +180 -delete" in unit
    assert host.service("estate-log-retention.timer").is_enabled
