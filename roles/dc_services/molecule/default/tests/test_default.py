"""The council's DNS answers for its zone, DHCP serves each VLAN, chrony serves time."""

import json


def test_dns_answers_for_the_zone(host):
    assert host.service("unbound").is_running
    probe = (
        "import socket,struct;q=b'\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00'"
        "+b''.join(bytes([len(p)])+p.encode() for p in 'tc01.council.example.internal'.split('.'))"
        "+b'\\x00\\x00\\x01\\x00\\x01';"
        "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(3);s.sendto(q,('127.0.0.1',53));"
        "r=s.recv(512);print(socket.inet_ntoa(r[-4:]), r[3]&15)"
    )
    address, rcode = host.check_output(f'python3 -c "{probe}"').split()
    assert (address, rcode) == ("198.51.100.10", "0")


def test_dhcp_has_a_subnet_per_vlan(host):
    assert host.service("kea-dhcp4-server").is_running
    text = host.file("/etc/kea/kea-dhcp4.conf").content_string
    config = json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))
    subnets = {s["id"]: s for s in config["Dhcp4"]["subnet4"]}
    assert sorted(subnets) == [30, 70]
    assert subnets[30]["pools"] == [{"pool": "198.51.100.128 - 198.51.100.254"}]
    assert subnets[30]["option-data"] == [{"name": "routers", "data": "198.51.100.1"}]
    # kea binds port 67 on each interface's address
    assert any(s.startswith("udp://") and s.endswith(":67") for s in host.socket.get_listening_sockets())


def test_ntp_serves_the_council(host):
    assert host.service("chrony").is_running
    conf = host.file("/etc/chrony/conf.d/estate-server.conf").content_string
    assert "allow 198.51.100.0/24" in conf
    assert host.socket("udp://0.0.0.0:123").is_listening
