"""The offline plan: the Pulumi program (stacks/) run in process under the SDK's mock runtime.

`plan(estate, stacks)` runs the hub and then each council as separate mock programs, one after another in
this process, and records every resource registered: type, logical name, URN, parent and inputs in wire
format (camelCase keys, numbers as floats, enums as strings: what CrossGuard policies see). The hub always
runs first: a council's StackReference to `shared` resolves to the hub's planned outputs.

The fast mode (the default) leaves out what only a real engine needs, with the same resources planned:
azure-native's dozens of type aliases per resource (a stack transformation drops them: about 80% of the
default run), the source position of every resource, the thread hop of every RPC (the mock monitor lives in
this process: calls run inline), the mock monitor's round trip of each response through the SDK's
serialisers, and cyclic garbage collection while a stack runs (and after the last few stacks of a forked
worker, see `UNCOLLECTED_TAIL`). `fast=False` keeps Pulumi's default mock behaviour, for comparison.
Nothing here depends on the clock or on randomness: two runs give byte-identical JSON.

Pulumi and the program are imported inside the functions, so importing this module (for `PlannedResource`)
is cheap. The mock runtime is process-global: never run two plans at once in one process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import json
import os
import pickle
import re
import signal
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ParamSpec, TypeVar, cast

from estate import stackfile
from estate.errors import EstateError
from estate.loader import Estate
from stacks.program import read_config, run

PROJECT = "shared-estate"
HUB = "shared"
ORGANIZATION = "organization"  # what Pulumi's DIY backends (azblob://, --local) call every org

# Stand-ins for what only a real deployment knows: the caller's subscription and tenant, the Entra groups
# and secrets an operator sets with `pulumi config set`. Deterministic, and visibly not real.
_NS = uuid.uuid5(uuid.NAMESPACE_URL, "shared-estate:plan")
PLAN_SUBSCRIPTION = str(uuid.uuid5(_NS, "subscription"))
PLAN_TENANT = str(uuid.uuid5(_NS, "tenant"))
PLAN_SSH_KEY = "ssh-ed25519 PLAN-ONLY-NOT-A-KEY estate-plan"
PLAN_SECRET = "plan-only-not-a-secret"
REDACTED = "[secret]"
UNKNOWN = "[unknown]"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"
_UNKNOWN_VALUE = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


# Providers whose resources live only in Pulumi's state (pulumi_random: the session hosts' generated passwords):
# nothing in Azure, so no ARM schema, right or rule applies to them.
LOCAL_PROVIDERS = ("random:",)


def is_cloud_type(type_: str) -> bool:
    """A cloud resource's type token (not a component, stack or stack reference, nor a state-only resource)."""
    return not type_.startswith(("shared-estate:", "pulumi:", *LOCAL_PROVIDERS))


@dataclass(frozen=True)
class PlannedResource:
    urn: str  # the mock URN
    type: str  # type token, e.g. "azure-native:network:VirtualNetwork"
    name: str  # the resource's logical name
    stack: str  # "shared" (the hub) or the council key
    parent: str | None  # parent URN (component or stack)
    inputs: dict[str, Any]  # wire format: camelCase keys, numbers as floats, enums as strings

    @property
    def custom(self) -> bool:
        """A cloud resource (not a component, stack or stack reference)."""
        return is_cloud_type(self.type)


@dataclass(frozen=True)
class Plan:
    resources: list[PlannedResource]  # per stack (hub first), parents before children, siblings by URN
    stacks: tuple[str, ...] = field(default=())

    def to_json(self) -> str:
        """Every resource with type, URN, parent and inputs; byte-identical across runs."""
        doc = {
            "project": PROJECT,
            "stacks": [{"stack": s, "resources": n} for s, n in self.counts().items()],
            "count": len(self.resources),
            "resources": [asdict(r) for r in self.resources],
        }
        return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    def counts(self) -> dict[str, int]:
        per = Counter(r.stack for r in self.resources)
        return {s: per[s] for s in self.stacks if s in per}

    def of_type(self, type_: str, stack: str | None = None) -> list[PlannedResource]:
        return [r for r in self.resources if r.type == type_ and (stack is None or r.stack == stack)]

    def for_stack(self, stack: str) -> list[PlannedResource]:
        return [r for r in self.resources if r.stack == stack]


Program = Callable[[Estate, str], dict[str, Any]]
_P = ParamSpec("_P")
_T = TypeVar("_T")


def plan(estate: Estate, stacks: Sequence[str] | None = None, *, fast: bool = True,
         program: Program | None = None, workers: int | None = None) -> Plan:
    """Plan the given stacks (None: the hub and every council).

    `fast=False` keeps Pulumi's default (slow) mock behaviour, for comparison. `program` replaces
    `stacks.program.run` (tests use it to run a deliberately broken copy). `workers`: processes to spread the
    councils over (default: one per CPU; 1 runs everything in this process). The hub is planned here first
    (every council reads its outputs); then each worker is forked and plans its share of the councils. The
    result is the same, in the same order, whatever the number of workers.
    """
    keys = _stacks(estate, stacks)
    councils = [k for k in keys if k != HUB]
    count = min(workers or os.cpu_count() or 1, len(councils))
    runner = _Runner(estate, fast, program)
    with _event_loop(inline_rpcs=fast):
        hub_records, hub_outputs = runner.run(HUB, None)
    by_stack = {HUB: hub_records} if HUB in keys else {}
    with _frozen(fast):
        if count > 1 and hasattr(os, "fork"):
            by_stack.update(_forked(runner, councils, count, hub_outputs))
        else:
            by_stack.update(_planned(runner, councils, hub_outputs))
    return Plan([r for key in keys for r in by_stack[key]], tuple(keys))


# Each stack's plan leaves about 23,000 objects in reference cycles (futures, tasks, outputs: 2.7 MB) that only
# the cyclic collector frees; collecting them is about a tenth of a stack's CPU time. A forked worker exits
# without freeing anything, so it does not collect after its last this-many stacks: at most about 55 MB of
# garbage is left, and a worker planning that many councils or fewer never collects at all. (Collecting after
# every stack costs half as much per object as collecting many stacks' garbage at once: it fits in the cache.)
UNCOLLECTED_TAIL = 20


def _planned(runner: _Runner, councils: Sequence[str], hub_outputs: dict[str, Any],
             exits_after: bool = False) -> dict[str, list[PlannedResource]]:
    """Plan `councils` one after another in this process, on an event loop of their own. `exits_after`: this
    process is a worker that exits once they are planned (see UNCOLLECTED_TAIL)."""
    planned: dict[str, list[PlannedResource]] = {}
    with _event_loop(inline_rpcs=runner.fast):
        for key in councils:
            if exits_after and runner.fast and len(councils) - len(planned) <= UNCOLLECTED_TAIL:
                gc.disable()  # the rest of this worker's garbage goes when it exits
            planned[key] = runner.run(key, hub_outputs)[0]
    return planned


class _InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """`run_in_executor` without the thread. The SDK hands every RPC to a worker thread because a real monitor
    blocks on gRPC; the mock monitor is a function call in this process, so the hop only adds a thread switch
    and a wake-up of the event loop per resource."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> concurrent.futures.Future[_T]:
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # handed to whoever awaits the call, as from a thread
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def _event_loop(inline_rpcs: bool) -> Iterator[None]:
    """A fresh event loop for a plan, closed after it (with its executor); RPCs inline if asked."""
    import asyncio

    loop = asyncio.new_event_loop()
    if inline_rpcs:
        loop.set_default_executor(_InlineExecutor(max_workers=1))
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        # the executor's threads end here, before any fork: a forked worker must not inherit a live thread
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()


def _forked(runner: _Runner, councils: Sequence[str], count: int,
            hub_outputs: dict[str, Any]) -> dict[str, list[PlannedResource]]:
    """Plan `councils` in `count` forked workers, which inherit everything the hub's plan imported. This
    process only waits: a share planned here would leave its garbage to be collected here, after the workers
    (they exit without collecting theirs). Errors are raised in share order."""
    shares = [list(councils[i::count]) for i in range(count)]
    children = [_fork(runner, share, hub_outputs) for share in shares]
    results: dict[str, list[PlannedResource]] = {}
    failures: list[BaseException] = []
    try:
        for pid, read in children:
            with os.fdopen(read, "rb") as pipe:
                data = pipe.read()
            os.waitpid(pid, 0)
            reply: tuple[str, Any] = pickle.loads(data) if data else ("error", RuntimeError("a plan worker died"))
            status, value = reply
            if status == "ok":
                results.update({key: [PlannedResource(*row) for row in rows] for key, rows in value.items()})
            else:
                failures.append(value)
    except BaseException:  # interrupted: the workers go too
        for pid, _ in children:
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGTERM)
                os.waitpid(pid, 0)
        raise
    if failures:
        raise failures[0]
    return results


def _fork(runner: _Runner, share: Sequence[str], hub_outputs: dict[str, Any]) -> tuple[int, int]:
    """A worker planning `share`; it sends back plain tuples (a tenth of the cost of pickling the dataclasses)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    os.close(read)
    try:
        planned = _planned(runner, share, hub_outputs, exits_after=True)
        payload: tuple[str, Any] = ("ok", {key: [(r.urn, r.type, r.name, r.stack, r.parent, r.inputs) for r in rows]
                                           for key, rows in planned.items()})
    except BaseException as exc:
        payload = ("error", _portable(exc))
    try:
        with os.fdopen(write, "wb") as pipe:
            pickle.dump(payload, pipe, protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        os._exit(0)


def _portable(exc: BaseException) -> BaseException:
    """The exception as the parent can re-raise it: EstateError keeps its problems, others their type."""
    if isinstance(exc, EstateError):
        return _EstateErrorCarrier(exc.problems)
    try:
        return cast(BaseException, pickle.loads(pickle.dumps(exc)))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class _EstateErrorCarrier(EstateError):
    """EstateError that survives pickling (its constructor takes problems, not a message)."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (EstateError, (self.problems,))


def _stacks(estate: Estate, stacks: Sequence[str] | None) -> list[str]:
    if stacks is None:
        return [HUB, *sorted(estate.councils)]
    out: list[str] = []
    for key in stacks:
        if key != HUB:
            estate.council(key)  # unknown council: one line, with the known ones
        if key not in out:
            out.append(key)
    return sorted(out, key=lambda k: (k != HUB, k))


def stack_config(estate: Estate, stack: str) -> dict[str, str]:
    """The config a stack is planned with: plan stand-ins for what an operator sets per deployment, then its
    committed Pulumi.<stack>.yaml, checked (estate.stackfile: unknown keys, secrets in clear text, a directory or
    a FIFO where the file should be are one-line errors). The hub's stand-in `spokes` is every council: the plan
    shows the estate with every spoke deployed and connected."""
    fw = estate.framework
    year, month = fw.version.split(".")[:2]
    config = {
        "azure-native:location": fw.data_centre.regions.primary,
        f"{PROJECT}:adminGroupObjectId": str(uuid.uuid5(_NS, f"{stack}/admins")),
        f"{PROJECT}:sshPublicKey": PLAN_SSH_KEY,
    }
    if stack == HUB:
        config[f"{PROJECT}:adminGroupName"] = "plan-consortium-operations"
        config[f"{PROJECT}:spokes"] = json.dumps(sorted(estate.councils))
    if stack != HUB:
        config[f"{PROJECT}:council"] = stack
        # the plan's clock: the framework version's month, so the plan never depends on today
        config[f"{PROJECT}:registrationTokenExpiry"] = f"{year}-{month}-28T00:00:00Z"
        config[f"{PROJECT}:desktopUsersGroupObjectId"] = str(uuid.uuid5(_NS, f"{stack}/desktop-users"))
        config[f"{PROJECT}:avdServicePrincipalObjectId"] = str(uuid.uuid5(_NS, "avd-service-principal"))
    committed = stackfile.load(stackfile.path(estate.root, stack), stack, councils=estate.councils)
    config.update(committed.values)
    for key in committed.secure:  # encrypted in the file: the plan cannot decrypt it, so it stands in for it
        config[key] = PLAN_SECRET
    return config


# --------------------------------------------------------------------------- the mock runtime


# azure-native module -> the Azure resource provider namespace of its types (also what `estate preflight`
# lists to register).
NAMESPACES = {
    "resources": "Microsoft.Resources",
    "network": "Microsoft.Network",
    "privatedns": "Microsoft.Network",
    "compute": "Microsoft.Compute",
    "keyvault": "Microsoft.KeyVault",
    "recoveryservices": "Microsoft.RecoveryServices",
    "operationalinsights": "Microsoft.OperationalInsights",
    "monitor": "Microsoft.Insights",
    "desktopvirtualization": "Microsoft.DesktopVirtualization",
    "authorization": "Microsoft.Authorization",
    "dbforpostgresql": "Microsoft.DBforPostgreSQL",
    "storage": "Microsoft.Storage",
}
_OWN_NAME_KEYS = {"VirtualMachine": "vmName", "VirtualMachineScaleSet": "vmScaleSetName",
                  "ProtectionPolicy": "policyName", "Server": "serverName", "PublicIPAddress": "publicIpAddressName",
                  "StorageAccount": "accountName", "VirtualMachineExtension": "vmExtensionName"}


def _plural(type_name: str) -> str:
    return type_name[0].lower() + type_name[1:] + "s"


def azure_name(token: str, logical: str, inputs: dict[str, Any]) -> str:
    """The resource's Azure name: its `<type>Name` input (or `name`), else its logical name."""
    type_name = token.rsplit(":", 1)[-1]
    key = _OWN_NAME_KEYS.get(type_name, type_name[0].lower() + type_name[1:] + "Name")
    value = inputs.get(key) or inputs.get("name")
    return value if isinstance(value, str) and value else logical


def mock_id(token: str, logical: str, inputs: dict[str, Any]) -> str:
    """An Azure-shaped resource id, deterministic: /subscriptions/<plan>/resourceGroups/<rg>/providers/..."""
    _, module, type_name = token.split(":")
    name = azure_name(token, logical, inputs)
    base = f"/subscriptions/{PLAN_SUBSCRIPTION}"
    if token == "azure-native:resources:ResourceGroup":
        return f"{base}/resourceGroups/{name}"
    own = _OWN_NAME_KEYS.get(type_name, type_name[0].lower() + type_name[1:] + "Name")
    parents = sorted(k for k, v in inputs.items()
                     if k.endswith("Name") and k not in (own, "resourceGroupName", "name") and isinstance(v, str)
                     and not k.startswith(("computer", "friendly", "display")))
    path = "".join(f"/{_plural(k[:-4])}/{inputs[k]}" for k in parents)
    tail = f"/providers/{NAMESPACES.get(module, module)}{path}/{_plural(type_name)}/{name}"
    if isinstance(inputs.get("resourceGroupName"), str):
        return f"{base}/resourceGroups/{inputs['resourceGroupName']}{tail}"
    scope = inputs.get("resourceUri") or inputs.get("scope")
    return f"{scope}{tail}" if isinstance(scope, str) else f"{base}{tail}"


def _engine_values(value: Any) -> Any:
    """Wire values as the SDK's deserialiser hands them to a mock outside a preview: unknowns are None and
    secrets stay wrapped (a mapping). The mocks read only plain strings, so nothing else needs decoding."""
    if isinstance(value, dict):
        return {k: _engine_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_engine_values(v) for v in value]
    return None if value == _UNKNOWN_VALUE else value


def _struct(state: dict[str, Any]) -> Any:
    """A mock's state (plain JSON) as the SDK's serialiser puts it on the wire: keys whose value is None left
    out, numbers as doubles."""
    from google.protobuf import struct_pb2

    def drop_none(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop_none(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [drop_none(v) for v in value]
        return value

    out = struct_pb2.Struct()
    out.update(drop_none(state))
    return out


def _wire(value: Any) -> Any:
    """Secrets redacted, unknowns marked; everything else as the engine sent it."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return REDACTED
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    if value == _UNKNOWN_VALUE:
        return UNKNOWN
    return value


class _Runner:
    def __init__(self, estate: Estate, fast: bool, program: Program | None) -> None:
        self.estate = estate
        self.fast = fast
        self.program = program

    def run(self, stack: str, hub_outputs: dict[str, Any] | None) -> tuple[list[PlannedResource], dict[str, Any]]:
        import pulumi
        from google.protobuf import json_format
        from pulumi.runtime import mocks, settings
        from pulumi.runtime.proto import resource_pb2
        from pulumi.runtime.stack import run_pulumi_func
        from pulumi.runtime.sync_await import _sync_await

        program = self.program or _default_program()

        records: dict[str, tuple[str, str, str | None, dict[str, Any]]] = {}
        expiry = stack_config(self.estate, stack).get(f"{PROJECT}:registrationTokenExpiry", "")

        class Mocks(mocks.Mocks):
            def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
                if args.typ == "pulumi:pulumi:StackReference":
                    return args.name, {"name": args.name, "outputs": hub_outputs or {}}
                if not args.custom:
                    return "", {}
                if args.typ.startswith(LOCAL_PROVIDERS):  # a generated value: the plan's stand-in secret
                    return args.name, {"result": PLAN_SECRET}
                state: dict[str, Any] = {"name": azure_name(args.typ, args.name, args.inputs)}
                identity = args.inputs.get("identity")
                if isinstance(identity, dict) and "SystemAssigned" in str(identity.get("type", "")):
                    # Azure gives a system-assigned identity a principal (its object id) that others grant roles to
                    state["identity"] = {**identity, "principalId": str(uuid.uuid5(_NS, f"{args.name}/identity")),
                                         "tenantId": PLAN_TENANT}
                if args.typ == "azure-native:operationalinsights:Workspace":
                    # Azure gives a workspace a customer id (a GUID) that traffic analytics names it by
                    state["customerId"] = str(uuid.uuid5(_NS, f"{args.name}/customer-id"))
                return mock_id(args.typ, args.name, args.inputs), state

            def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
                if args.token == "azure-native:authorization:getClientConfig":
                    return {"subscriptionId": PLAN_SUBSCRIPTION, "tenantId": PLAN_TENANT,
                            "clientId": str(uuid.uuid5(_NS, "client")),
                            "objectId": str(uuid.uuid5(_NS, "object"))}, []
                if args.token == "azure-native:desktopvirtualization:getHostPoolRegistrationToken":
                    return {"token": PLAN_SECRET, "expirationTime": expiry,
                            "registrationTokenOperation": "Update"}, []
                return {}, []

        def record(urn: str, request: Any, struct: Any) -> dict[str, Any]:
            """Keep what the engine was sent for a resource; return its inputs as they came off the wire."""
            wire = json_format.MessageToDict(struct) if request.type != "pulumi:pulumi:Stack" else {}
            records[urn] = (request.type, request.name, request.parent or None, _wire(wire))
            return wire

        class Monitor(mocks.MockMonitor):
            """Pulumi's mock monitor, recording every resource it is sent."""

            def RegisterResource(self, request: Any) -> Any:
                response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
                record(response.urn, request, request.object)
                return response

            def ReadResource(self, request: Any) -> Any:
                response = super().ReadResource(request)  # type: ignore[no-untyped-call]
                record(response.urn, request, request.properties)
                return response

        class LeanMonitor(mocks.MockMonitor):
            """The same responses, built directly: the inputs are read once from the wire (MockMonitor decodes
            them with the SDK's deserialiser as well) and the mock's state, plain JSON, goes straight into the
            response (MockMonitor awaits the SDK's serialiser for it, pumping the event loop from inside a call)."""

            def _register(self, request: Any, struct: Any, import_id: str, custom: bool | None) -> tuple[str, str, Any]:
                urn = self.make_urn(request.parent, request.type, request.name)
                wire = record(urn, request, struct)
                if request.type == "pulumi:pulumi:Stack":
                    return urn, "", None
                args = mocks.MockResourceArgs(request.type, request.name, _engine_values(wire), request.provider,
                                              import_id, custom)
                id_, state = self.mocks.new_resource(args)
                self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, id_ or "", state)
                return urn, id_ or "", _struct(state)

            def RegisterResource(self, request: Any) -> Any:
                urn, id_, state = self._register(request, request.object, request.importId, request.custom or False)
                return resource_pb2.RegisterResourceResponse(urn=urn, id=id_, object=state)

            def ReadResource(self, request: Any) -> Any:
                urn, _, state = self._register(request, request.properties, request.id, None)  # as MockMonitor
                return resource_pb2.ReadResourceResponse(urn=urn, properties=state)

        settings.set_root_resource(None)  # type: ignore[arg-type]  # a fresh root Stack per stack
        monitor = (LeanMonitor if self.fast else Monitor)(Mocks())
        mocks.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor,
                        organization=ORGANIZATION)
        if self.fast:
            pulumi.runtime.register_stack_transformation(_drop_aliases)
        config = stack_config(self.estate, stack)
        pulumi.runtime.set_all_config(config, [k for k in config if config[k] == PLAN_SECRET])
        captured: dict[str, Any] = {}

        def main() -> None:
            outputs = program(self.estate, stack)
            if outputs:
                pulumi.Output.all(**outputs).apply(captured.update)

        with _no_source_positions(self.fast), _collected_after(self.fast):
            _sync_await(run_pulumi_func(main))
        planned = [PlannedResource(urn, t, n, stack, p, i) for urn, (t, n, p, i) in records.items()]
        return _tree_order(planned), _plain(captured)


def _default_program() -> Program:
    def program(estate: Estate, name: str) -> dict[str, Any]:
        return run(estate, name, read_config(name))

    return program


@contextlib.contextmanager
def _no_source_positions(active: bool) -> Iterator[None]:
    """Under mocks, skip the stack walk the SDK does per resource to tell the engine which source line declared
    it (about 8% of the run): nobody reads it here. Goes with fast (both are the fast mode)."""
    import pulumi.runtime.resource as sdk

    original = getattr(sdk, "_get_stack_trace", None)
    if not active or original is None:
        yield
        return
    from pulumi.runtime.proto import source_pb2

    empty = source_pb2.StackTrace()
    sdk._get_stack_trace = lambda: empty
    try:
        yield
    finally:
        sdk._get_stack_trace = original


@contextlib.contextmanager
def _collected_after(active: bool) -> Iterator[None]:
    """No cyclic garbage collection while a stack is planned; its youngest generation collected after it, unless
    the caller had turned collection off (then its garbage is left to the caller).

    A stack's run allocates hundreds of thousands of short-lived objects (futures, outputs, tasks), so the
    collector runs every few hundred resources, and now and then walks the whole heap: the SDK's and
    azure-native's classes and every stack planned so far. That was over half the run (40 councils in one
    process: 12.7 s with it, 5.8 s without). Objects made while collection is off stay in the youngest
    generation, so collecting that one generation afterwards frees the stack's reference cycles: the peak
    memory is the same (157 MB).
    """
    if not active or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.collect(0)
        gc.enable()


@contextlib.contextmanager
def _frozen(active: bool) -> Iterator[None]:
    """What exists now (the modules the hub's plan imported, its outputs) set aside from the collector until the
    councils are planned: no collection walks it, and no forked worker's collection writes to the pages it
    shares with this process. Handed back to the collector afterwards."""
    if not active:
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _drop_aliases(args: Any) -> Any:
    """Stack transformation: aliases mean nothing under mocks and cost most of the time."""
    import pulumi

    if not args.opts.aliases:
        return None
    opts = pulumi.ResourceOptions.merge(args.opts, None)
    opts.aliases = None
    return pulumi.ResourceTransformationResult(args.props, opts)


def _plain(value: Any) -> Any:
    """Outputs resolved to plain JSON values (the StackReference mock hands them to council runs)."""
    return json.loads(json.dumps(value, default=str))


def _tree_order(resources: list[PlannedResource]) -> list[PlannedResource]:
    """Parents before children, siblings sorted by URN: stable whatever order the runtime registered in."""
    children: dict[str | None, list[PlannedResource]] = {}
    urns = {r.urn for r in resources}
    for r in resources:
        children.setdefault(r.parent if r.parent in urns else None, []).append(r)
    out: list[PlannedResource] = []
    stack = sorted(children.get(None, []), key=lambda r: r.urn, reverse=True)
    while stack:
        r = stack.pop()
        out.append(r)
        stack.extend(sorted(children.get(r.urn, []), key=lambda c: c.urn, reverse=True))
    return out


_KEY_PROPERTIES: dict[str, list[tuple[str, str]]] = {
    "resources:ResourceGroup": [("location", "location")],
    "network:VirtualNetwork": [("address", "addressSpace.addressPrefixes")],
    "network:Subnet": [("subnet", "subnetName"), ("prefix", "addressPrefix")],
    "network:NetworkSecurityGroup": [("rules", "#securityRules")],
    "network:RouteTable": [("routes", "#routes")],
    "network:VirtualNetworkPeering": [("on", "virtualNetworkName"), ("to", "remoteVirtualNetwork.id")],
    "network:AzureFirewall": [("tier", "sku.tier")],
    "network:FirewallPolicyRuleCollectionGroup": [("collections", "#ruleCollections")],
    "network:BastionHost": [("sku", "sku.name")],
    "network:NetworkInterface": [("ip", "ipConfigurations.0.privateIPAddress")],
    "compute:VirtualMachine": [("size", "hardwareProfile.vmSize"), ("image", "storageProfile.imageReference.sku"),
                               ("encryptionAtHost", "securityProfile.encryptionAtHost")],
    "compute:VirtualMachineScaleSet": [("size", "sku.name"), ("hosts", "sku.capacity")],
    "desktopvirtualization:HostPool": [("type", "hostPoolType"), ("maxSessions", "maxSessionLimit")],
    "operationalinsights:Workspace": [("retentionDays", "retentionInDays")],
    "keyvault:Vault": [("rbac", "properties.enableRbacAuthorization"),
                       ("purgeProtection", "properties.enablePurgeProtection")],
    "recoveryservices:ProtectionPolicy": [("every", "properties.schedulePolicy.scheduleRunFrequency")],
    "dbforpostgresql:Server": [("sku", "sku.name"), ("version", "version")],
    "authorization:RoleAssignment": [("principal", "principalId"), ("scope", "scope")],
    "privatedns:PrivateZone": [("zone", "privateZoneName")],
    "pulumi:StackReference": [("stack", "name")],
}


def _lookup(inputs: Any, path: str) -> Any:
    count = path.startswith("#")
    value = inputs
    for part in path.lstrip("#").split("."):
        if isinstance(value, list) and re.fullmatch(r"\d+", part):
            value = value[int(part)] if int(part) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    if count:
        return len(value) if isinstance(value, list) else None
    return value


def key_properties(resource: PlannedResource) -> str:
    """A few telling inputs of a resource, for the plan's tree."""
    token = resource.type.split(":", 1)[1] if resource.type.count(":") == 2 else resource.type
    parts = []
    for label, path in _KEY_PROPERTIES.get(token, []):
        value = _lookup(resource.inputs, path)
        if value is None:
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, list):
            value = ",".join(str(v) for v in value)
        if isinstance(value, str) and value.startswith("/subscriptions/"):
            value = value.rsplit("/", 1)[-1]
        parts.append(f"{label}={value}")
    return " ".join(parts)


def render_tree(result: Plan) -> str:
    """The plan as text: per stack, the resource tree (type, name, key properties) and counts."""
    lines: list[str] = []
    by_urn = {r.urn: r for r in result.resources}
    for stack, count in result.counts().items():
        resources = result.for_stack(stack)
        custom = sum(1 for r in resources if r.custom)
        lines.append(f"{stack}{' (hub)' if stack == HUB else ''}: {count} resources ({custom} Azure, "
                     f"{count - custom} components and references)")
        depth: dict[str, int] = {}
        for r in resources:
            d = depth[r.parent] + 1 if r.parent in depth and r.parent in by_urn else 0
            depth[r.urn] = d
            props = key_properties(r)
            lines.append(f"{'  ' * (d + 1)}{r.type}  {r.name}{'  ' + props if props else ''}")
        lines.append("")
    types = Counter(r.type for r in result.resources if r.custom)
    lines.append(f"{len(result.resources)} resources in {len(result.counts())} stacks; Azure resources by type:")
    for t, n in sorted(types.items()):
        lines.append(f"  {n:6d}  {t}")
    return "\n".join(lines) + "\n"
