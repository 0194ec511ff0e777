# The shared estate's inventory plugin: Ansible's view of framework.yaml and inventories/, built by the estate
# library (estate.ansible_inventory). Licence: the shared-estate project's (see the repository root).
from __future__ import annotations

DOCUMENTATION = r"""
name: estate
short_description: The shared estate's hosts, groups and role variables, from framework.yaml and inventories/
version_added: "1.0.0"
description:
  - Reads C(framework.yaml) and C(inventories/) through the estate library (the C(estate) Python package must be
    importable by the Python that runs Ansible) and yields the estate's hosts with the groups and C(estate_*)
    variables the roles in C(roles/) and C(playbooks/site.yml) need.
  - "Groups: C(council_<key>) (a C(-) in the key as C(_)) or C(hub) for the site; one per role (C(thin_client),
    C(app_server), C(dc_services), C(router), C(helpdesk), C(log_collector)); C(vlan_<name>) per VLAN or hub
    segment."
  - "Sources: C(lab), the hosts C(estate lab up) made (its generated C(.state/lab/inventory.yml)), and
    C(production), the real hosts each C(inventories/<council>/hosts.yml) lists under C(production:)."
  - The repository root is the nearest folder above this config file holding C(framework.yaml), whatever the
    working directory or playbook directory (AWX runs project inventory sources from elsewhere).
  - The helpdesk's passwords are lazy lookups of C(.state/configure/secrets.json), never values in the inventory.
  - A malformed C(hosts.yml) fails the source with one line naming the file, the line and the field.
  - The config file's name must end in C(estate.yml) or C(estate.yaml).
options:
  plugin:
    description: The name of this plugin; it makes the file a config of this plugin.
    required: true
    type: str
    choices: ["shared_estate.estate.estate", "estate"]
  sources:
    description: Which hosts to yield.
    type: list
    elements: str
    choices: ["lab", "production"]
    default: ["lab", "production"]
  lab_inventory:
    description: The lab's generated inventory, relative to the repository root.
    type: str
    default: .state/lab/inventory.yml
  today:
    description:
      - The day a council's exemptions are judged on (YYYY-MM-DD, a YAML date or a string); by default the current
        date. For tests.
    type: raw
requirements:
  - the C(estate) Python package (this repository, installed with pip) importable by Ansible's Python
"""

EXAMPLES = r"""
# inventories/estate.yml: the lab's hosts and every council's production hosts
plugin: shared_estate.estate.estate

# only the councils' real hosts
plugin: shared_estate.estate.estate
sources: [production]
"""

from pathlib import Path  # noqa: E402

from ansible.errors import AnsibleParserError  # noqa: E402
from ansible.plugins.inventory import BaseInventoryPlugin  # noqa: E402

try:  # ansible-core 2.19+: only strings marked trusted are templated (the secrets' lookups, nothing else)
    from ansible.template import trust_as_template
except ImportError:  # older ansible-core templates every inventory string
    def trust_as_template(value):  # type: ignore[no-redef]
        return value


def _trusted(value):
    """A template var's strings marked as trusted for templating, through lists and dicts."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    return value


class InventoryModule(BaseInventoryPlugin):
    NAME = "shared_estate.estate.estate"

    def verify_file(self, path):
        return super().verify_file(path) and str(path).endswith(("estate.yml", "estate.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)  # the options above, checked by Ansible
        try:
            from estate.ansible_inventory import TEMPLATE_VARS, from_config
            from estate.errors import EstateError
        except ImportError as exc:
            raise AnsibleParserError(f"the estate library is not importable by this Python ({exc}): "
                                     "pip install the shared-estate repository where Ansible runs") from None
        try:
            built = from_config(Path(path))
        except EstateError as exc:
            raise AnsibleParserError(str(exc)) from None
        for group in built.groups:
            self.inventory.add_group(group)
        for name, hostvars in built.hosts.items():
            self.inventory.add_host(name)
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
        for group, members in built.groups.items():
            for name in members:
                self.inventory.add_child(group, name)
        for key, value in built.vars.items():
            self.inventory.set_variable("all", key, _trusted(value) if key in TEMPLATE_VARS else value)
