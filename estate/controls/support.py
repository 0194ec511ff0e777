"""Operating-system support lists: is an operating system on the framework's list and still in support?

The data centre's server controls (3.9) and the desktop's operating-system controls judge their hosts and
registers against a `supported:` list of framework.yaml (os, version, end_of_support) with this one function.
"""

from __future__ import annotations

import datetime as dt

from estate.models import SupportedOs


def supported(catalogue: list[SupportedOs], os_name: str, version: str, today: dt.date) -> tuple[bool, str]:
    """Is (os, version) on the list and still within support today? (names compare case-blind)."""
    for entry in catalogue:
        if entry.os.lower() == os_name.lower() and entry.version.lower() == version.lower():
            if today <= entry.end_of_support:
                return True, f"{os_name} {version} is supported until {entry.end_of_support}"
            return False, f"{os_name} {version} went out of support on {entry.end_of_support}"
    return False, f"{os_name} {version} is not on the framework's supported list"
