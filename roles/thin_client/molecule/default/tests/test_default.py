"""The thin client: a locked-down kiosk, screen lock, USB storage blocked, RDP client to the broker."""

import re


def test_kiosk_user_locked_down(host):
    kiosk = host.user("kiosk")
    assert kiosk.exists
    assert kiosk.password in ("!", "!*")
    assert not set(kiosk.groups) & {"sudo", "adm", "wheel", "admin", "root", "staff", "disk"}
    assert "is not allowed to run sudo" in host.check_output("sudo -n -l -U kiosk")
    assert host.file("/home/kiosk").user == "root"
    effective = host.check_output("sshd -T -C user=kiosk,host=x,addr=192.0.2.1")
    assert re.search(r"^denyusers kiosk$", effective, re.M)


def test_screen_locks_after_ten_minutes(host):
    session = host.file("/etc/estate/kiosk-session")
    assert session.user == "root" and session.mode == 0o755
    assert re.search(r"^xset s 600 0$", session.content_string, re.M)
    assert "xss-lock" in session.content_string


def test_usb_storage_blocked(host):
    conf = host.file("/etc/modprobe.d/estate-usb-storage.conf").content_string
    assert "install usb-storage /bin/false" in conf


def test_rdp_client_points_at_the_broker(host):
    assert host.package("freerdp2-x11").is_installed
    assert "/v:198.51.100.20 /gateway:g:198.51.100.20:443" in host.file("/etc/estate/kiosk-session").content_string
    nodm = host.file("/etc/default/nodm").content_string
    assert "NODM_USER=kiosk" in nodm and "NODM_XSESSION=/etc/estate/kiosk-session" in nodm
