"""`estate configure [--council C] [--check]`: run the Ansible roles over the estate's hosts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from estate.cli_common import RootOpt, guarded, load

if TYPE_CHECKING:
    from estate.configure import Result


def _console() -> Any:
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def summary_table(result: Result) -> Any:
    """ok/changed/failed/unreachable per host, and the totals."""
    from rich.table import Table

    changed_label = "drift" if result.check else "changed"
    table = Table(title=f"estate configure{' --check' if result.check else ''}: {len(result.tally.hosts)} hosts "
                        f"in {result.seconds:.0f} s")
    for col in ("host", "ok", changed_label, "failed", "unreachable", "skipped"):
        table.add_column(col, justify="left" if col == "host" else "right")
    for name in sorted(result.tally.hosts):
        t = result.tally.hosts[name]
        table.add_row(name, str(t.ok), str(t.changed), str(t.failed), str(t.unreachable), str(t.skipped))
    tot = result.tally.totals
    table.add_section()
    table.add_row("total", str(tot.ok), str(tot.changed), str(tot.failed), str(tot.unreachable), str(tot.skipped))
    return table


class Display:
    """Streams runner events: a live line per host on a terminal, one line per change or failure otherwise."""

    def __init__(self, console: Any, hosts: list[str], quiet: bool) -> None:
        self.console = console
        self.quiet = quiet
        self.live = console.is_terminal and not quiet
        self.state: dict[str, str] = dict.fromkeys(hosts, "waiting")
        self.counts: dict[str, list[int]] = {h: [0, 0] for h in hosts}  # tasks done, changed
        self._live: Any = None

    def _render(self) -> Any:
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for name in sorted(self.state):
            done, changed = self.counts.get(name, [0, 0])
            table.add_row(name, f"{done} tasks", f"{changed} changed", self.state[name][:90])
        return table

    def __enter__(self) -> Display:
        if self.live:
            from rich.live import Live

            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def __call__(self, event: Any) -> None:
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        host = str(data.get("host") or "")
        if not host:
            return
        task = str(data.get("task") or "")
        counts = self.counts.setdefault(host, [0, 0])
        line = None
        if kind == "runner_on_start":
            self.state[host] = task
        elif kind == "runner_on_ok":
            counts[0] += 1
            if (data.get("res") or {}).get("changed"):
                counts[1] += 1
                line = f"[yellow]{host}[/]: changed: {task}"
        elif kind == "runner_on_skipped":
            counts[0] += 1
        elif kind == "runner_on_failed" and not data.get("ignore_errors"):
            self.state[host] = f"FAILED: {task}"
            line = f"[red]{host}[/]: FAILED: {task}"
        elif kind == "runner_on_unreachable":
            self.state[host] = "UNREACHABLE"
            line = f"[red]{host}[/]: UNREACHABLE at {task}"
        if self._live is not None:
            self._live.update(self._render())
        elif line and not self.quiet:
            self.console.print(line, highlight=False)


def register(app: typer.Typer) -> None:
    @app.command()
    @guarded
    def configure(
        council: Annotated[str | None, typer.Option("--council", "-c", help="Only this council's hosts "
                                                    "('shared' for the hub's).")] = None,
        check: Annotated[bool, typer.Option("--check", help="Report drift (what would change); change nothing.")]
        = False,
        inventory: Annotated[Path | None, typer.Option("--inventory", "-i", help="The inventory plugin's config "
                                                       "(default: inventories/estate.yml: the lab's hosts and the "
                                                       "councils' production hosts), or a lab inventory "
                                                       "(.state/lab/inventory.yml: its hosts only).")] = None,
        ansible_defaults: Annotated[bool, typer.Option("--ansible-defaults", help="Run with Ansible's default "
                                                       "settings instead of the project's fast ones (for bench/).")]
        = False,
        forks: Annotated[int | None, typer.Option("--forks", min=1, help="Parallel hosts (default: all).")] = None,
        control: Annotated[list[str] | None, typer.Option("--control", help="Run only this control's tasks (its "
                                                          "framework id, e.g. 5.7; repeat for more).")] = None,
        skip_control: Annotated[list[str] | None, typer.Option("--skip-control", help="Run every control's tasks "
                                                               "but this one's (repeat for more).")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only the summary.")] = False,
        root: RootOpt = None,
    ) -> None:
        """Configure the hosts with the Ansible roles (playbooks/site.yml through ansible-runner).

        A council's active exemptions turn their controls off on the hosts they cover (listed as "exempt, not
        enforced"). Ends with ok/changed/failed/unreachable per host. Exit 0 when every host converged (with
        --check: and none drifted), 1 otherwise, 2 on bad input (an unknown control id among them)."""
        from estate.ansible_inventory import ESTATE_INVENTORY, hosts_of
        from estate.configure import control_ids, role_controls, run

        estate = load(root)
        enforced = role_controls(estate.root)  # a wrong id is refused before anything else is read
        control_ids(estate, control or (), enforced, "--control")
        control_ids(estate, skip_control or (), enforced, "--skip-control")
        inv = inventory or (estate.root / ESTATE_INVENTORY)
        hosts = hosts_of(estate, inv)  # for the live display; the run asks the plugin itself
        out = _console()
        with Display(out, hosts, quiet) as display:
            result = run(estate, inventory=inv, council=council, check=check, fast=not ansible_defaults,
                         forks=forks, on_event=display, controls=control or (), skip_controls=skip_control or ())
        out.print(summary_table(result))
        for item in result.exempt:
            out.print(f"exempt, not enforced: {item.describe()}", highlight=False)
        for name in sorted(result.tally.hosts):
            t = result.tally.hosts[name]
            for error in t.errors[:3]:
                out.print(f"[red]{name}[/]: {error}", highlight=False)
            if check and t.changes:
                out.print(f"{name} drifts: " + "; ".join(t.changes[:8]) + (" ..." if len(t.changes) > 8 else ""),
                          highlight=False)
        mode = "Ansible's defaults" if ansible_defaults else "fast settings"
        out.print(f"{result.status} in {result.seconds:.1f} s ({mode}); artifacts: {result.artifacts}",
                  highlight=False)
        raise typer.Exit(result.exit_code)
