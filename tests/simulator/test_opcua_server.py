"""Acceptance 2 of issue 3: the simulated PLC (simulator/opcua_server.py) seen by a real client.

A real asyncua client talks to the real server on a free 127.0.0.1 port. Two servers are
shared by the tests of this module (starting one builds the whole standard address space,
seconds on a busy machine): a plain one and one with Basic256Sha256 and a password. Every
test publishes its own values and waits for exactly those, so the order of tests is free.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asyncua import Client, Node, ua
from asyncua.crypto import cert_gen
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from linewatch.config import PlantConfig, load_config, parse_config, read_secret
from linewatch.sample import Quality, Sample
from simulator.opcua_server import SimOpcuaServer, ensure_certificate
from simulator.publisher import Publisher

pytestmark = pytest.mark.anyio
logger = logging.getLogger(__name__)

PASSWORD_ENV = "LW_TEST_SIM_PLC1_PASSWORD"
PASSWORD = "s3cret-Kwun-Tong"
ACME = "urn:acme:plc"
CLIENT_URI = "urn:linewatch:test:opcua-client"
WAIT_S = 15.0  # upper bound for anything a client waits for
BURST_PUBLISH_MS = 20  # publishing interval of the client watching the burst

_COMMON_SIGNALS = """
      state: {{source: plc1, node: "{state}"}}
      reason: {{source: plc1, node: "{reason}"}}
      product: {{source: plc1, node: "ns=2;s={line}.Product"}}
      total_count: {{source: plc1, node: "ns=2;s={line}.Count.Total"{total_extra}}}
      good_count: {{source: plc1, node: "ns=2;s={line}.Count.Good"}}
      reject_count: {{source: plc1, node: "ns=2;s={line}.Count.Reject"}}
      energy_kwh: {{source: plc1, {energy}}}
      telemetry:
        - {{name: temperature, source: plc1, node: "ns=2;s={line}.Temperature"}}
        - {{name: speed, source: plc1, node: "ns=2;s={line}.Speed"}}
        - {{name: humidity, source: broker, topic: "plant/{{line}}/env", path: "$.rh"}}
        - {{name: vibration, source: plc2, node: "ns=2;s={line}.Vibration"}}"""


def plant_yaml(security: str = "{policy: None}", auth: str = "") -> str:
    """Three lines with nine plc1 signals each, plus signals of two other sources."""
    l1 = _COMMON_SIGNALS.format(line="L1", state="ns=2;s=L1.State", reason="ns=2;s=L1.Reason",
                                total_extra="", energy='node: "ns=2;s=L1.Energy"')
    l2 = _COMMON_SIGNALS.format(line="L2", state="ns=2;s=L2.State", reason="ns=2;s=L2.Reason",
                                total_extra="", energy='node: "ns=2;s=L2.Energy"')
    l3 = _COMMON_SIGNALS.format(
        line="L3", state=f"nsu={ACME};s=L3.State", reason=f"nsu={ACME};s=L3.Reason",
        total_extra=", counter_max: 65535",
        energy='browse_path: "0:Objects/2:L3/2:PowerMeter/2:EnergyTotal"')
    return f"""
site: {{id: test-site, timezone: Asia/Hong_Kong}}
products: [{{id: P1, ideal_cycle_s: 10}}, {{id: P2, ideal_cycle_s: 12}}]
reasons: [{{code: fault, category: unplanned_stop}}]
lines:
  - id: L1
    default_product: P1
    counter_max: 65535
    state_map: {{"1": running, "2": {{category: unplanned_stop, reason: fault}}, "3": setup}}
    reason_map: {{"17": fault}}
    product_map: {{"101": P1, "102": P2}}
    signals:{l1}
  - id: L2
    default_product: P1
    state_map: {{"1": running, "2": unplanned_stop}}
    reason_map: {{"0": null, "17": fault}}
    signals:{l2}
  - id: L3
    default_product: P2
    state_map: {{RUN: running, JAM: {{category: unplanned_stop, reason: fault}}}}
    signals:{l3}
sources:
  opcua:
    - id: plc1
      endpoint: "opc.tcp://127.0.0.1:4840"
      security: {security}
      {auth}
    - id: plc2
      endpoint: "opc.tcp://127.0.0.1:4841"
  mqtt:
    - id: broker
      host: 127.0.0.1
"""


@dataclass(frozen=True)
class Expect:
    """One plc1 signal as the test config defines it, written out by hand."""

    line: str
    signal: str
    nodeid: str  # ns=2;… or nsu=…; resolved against the server's namespace array
    path: tuple[str, ...]  # browse names from Objects, "ns:Name" with ns 2 or "acme"
    datatype: int  # ua.ObjectIds.*
    value: object  # sample value given to publish
    seen: object  # value the client must see


U16, U32, STR, DBL = (ua.ObjectIds.UInt16, ua.ObjectIds.UInt32, ua.ObjectIds.String,
                      ua.ObjectIds.Double)


def expectations(shift: int = 0) -> list[Expect]:
    """The 27 plc1 nodes; `shift` varies the values so every test publishes new ones."""
    rows: list[Expect] = []
    for n, line, counter in ((1, "L1", U16), (2, "L2", U32)):
        rows += [
            Expect(line, "state", f"ns=2;s={line}.State", ("2:" + line, "2:State"), U16,
                   1 + shift % 2, 1 + shift % 2),
            Expect(line, "reason", f"ns=2;s={line}.Reason", ("2:" + line, "2:Reason"), U16,
                   17 + shift, 17 + shift),
            Expect(line, "product", f"ns=2;s={line}.Product", ("2:" + line, "2:Product"), STR,
                   101 + shift % 2, str(101 + shift % 2)),
            Expect(line, "total_count", f"ns=2;s={line}.Count.Total",
                   ("2:" + line, "2:Count", "2:Total"), counter, 1000 * n + shift,
                   1000 * n + shift),
            Expect(line, "good_count", f"ns=2;s={line}.Count.Good",
                   ("2:" + line, "2:Count", "2:Good"), counter, 990 * n + shift, 990 * n + shift),
            Expect(line, "reject_count", f"ns=2;s={line}.Count.Reject",
                   ("2:" + line, "2:Count", "2:Reject"), counter, 10 * n + shift,
                   10 * n + shift),
            Expect(line, "energy_kwh", f"ns=2;s={line}.Energy", ("2:" + line, "2:Energy"), DBL,
                   12.5 * n + shift, 12.5 * n + shift),
            Expect(line, "temperature", f"ns=2;s={line}.Temperature",
                   ("2:" + line, "2:Temperature"), DBL, 210.25 + shift, 210.25 + shift),
            Expect(line, "speed", f"ns=2;s={line}.Speed", ("2:" + line, "2:Speed"), DBL,
                   str(33.5 + shift), 33.5 + shift),  # text that reads as a number
        ]
    state = "JAM" if shift % 2 else "RUN"
    rows += [
        Expect("L3", "state", f"nsu={ACME};s=L3.State", ("2:L3", "acme:State"), STR, state, state),
        Expect("L3", "reason", f"nsu={ACME};s=L3.Reason", ("2:L3", "acme:Reason"), STR,
               "fault", "fault"),
        Expect("L3", "product", "ns=2;s=L3.Product", ("2:L3", "2:Product"), STR, "P2", "P2"),
        Expect("L3", "total_count", "ns=2;s=L3.Count.Total", ("2:L3", "2:Count", "2:Total"),
               U16, 65535 - shift, 65535 - shift),
        Expect("L3", "good_count", "ns=2;s=L3.Count.Good", ("2:L3", "2:Count", "2:Good"), U32,
               4294967295 - shift, 4294967295 - shift),
        Expect("L3", "reject_count", "ns=2;s=L3.Count.Reject", ("2:L3", "2:Count", "2:Reject"),
               U32, 7 + shift, 7 + shift),
        Expect("L3", "energy_kwh", "ns=2;s=L3.PowerMeter.EnergyTotal",
               ("2:L3", "2:PowerMeter", "2:EnergyTotal"), DBL, 0.001 + shift, 0.001 + shift),
        Expect("L3", "temperature", "ns=2;s=L3.Temperature", ("2:L3", "2:Temperature"), DBL,
               -5.5 - shift, -5.5 - shift),
        Expect("L3", "speed", "ns=2;s=L3.Speed", ("2:L3", "2:Speed"), DBL, 0.0 + shift,
               0.0 + shift),
    ]
    return rows


# --- fixtures and helpers --------------------------------------------------------------


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def plain_config() -> PlantConfig:
    return parse_config(plant_yaml(), "plain.yaml")


@pytest.fixture(scope="module")
def secure_config() -> PlantConfig:
    return parse_config(
        plant_yaml(security="{policy: Basic256Sha256, mode: SignAndEncrypt}",
                   auth=f"auth: {{username: edge, password_env: {PASSWORD_ENV}}}"),
        "secure.yaml",
    )


@pytest.fixture(scope="module")
async def plain_server(plain_config: PlantConfig,
                       tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SimOpcuaServer]:
    server = SimOpcuaServer(plain_config, plain_config.sources.opcua[0], port=free_port(),
                            pki_dir=tmp_path_factory.mktemp("pki-plain"))
    publisher: Publisher = server  # what the real-time runner holds
    await publisher.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def secure_server(secure_config: PlantConfig,
                        tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SimOpcuaServer]:
    source = secure_config.sources.opcua[0]
    assert source.auth is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PASSWORD_ENV, PASSWORD)
        password = read_secret(source.auth.password_env, source.auth.password_file)
    server = SimOpcuaServer(secure_config, source, port=free_port(), password=password,
                            pki_dir=tmp_path_factory.mktemp("pki-server"))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def client_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("pki-client")
    cert, key = folder / "cert.der", folder / "key.pem"
    await cert_gen.setup_self_signed_certificate(
        key, cert, CLIENT_URI, socket.gethostname(), [ExtendedKeyUsageOID.CLIENT_AUTH],
        {"organizationName": "linewatch tests"})
    return cert, key


async def secure_client(server: SimOpcuaServer, client_pki: tuple[Path, Path],
                        user: str | None = "edge", password: str | None = PASSWORD,
                        mode: ua.MessageSecurityMode = ua.MessageSecurityMode.SignAndEncrypt,
                        ) -> Client:
    """A client (not yet connected) that trusts the server's certificate from pki_dir."""
    client = Client(server.endpoint_url, timeout=WAIT_S)
    client.application_uri = CLIENT_URI
    cert, key = client_pki
    await client.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                              server_certificate=str(server.certificate_path), mode=mode)
    if user is not None:
        client.set_user(user)
    if password is not None:
        client.set_password(password)
    return client


class Changes:
    """Subscription handler: the last DataValue per node, and when each arrived."""

    def __init__(self) -> None:
        self.last: dict[ua.NodeId, ua.DataValue] = {}
        self.arrivals: list[tuple[float, ua.DataValue]] = []  # (monotonic time, value)
        self._event = asyncio.Event()

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        value = data.monitored_item.Value
        self.last[node.nodeid] = value
        self.arrivals.append((time.monotonic(), value))
        self._event.set()

    async def wait_until(self, condition: Callable[[], bool], what: str,
                         timeout: float = WAIT_S) -> None:
        async def loop() -> None:
            while not condition():
                self._event.clear()
                await self._event.wait()

        try:
            await asyncio.wait_for(loop(), timeout)
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout} s; last values: "
                                 f"{ {k.to_string(): v.Value for k, v in self.last.items()} }"
                                 ) from None


async def resolve(client: Client, text: str) -> ua.NodeId:
    """A NodeId as the client sees it; nsu=<uri> is looked up in the namespace array."""
    nodeid = ua.NodeId.from_string(text)
    uri = getattr(nodeid, "NamespaceUri", None)
    if uri:
        return ua.NodeId(nodeid.Identifier, await client.get_namespace_index(uri))
    return nodeid


def samples_for(rows: Iterable[Expect], ts0: int) -> list[Sample]:
    return [Sample(ts0 + i, row.line, row.signal, row.value) for i, row in enumerate(rows)]


def ts_datetime(ts_ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ts_ms)


async def subscribe_and_check(client: Client, server: SimOpcuaServer, shift: int) -> None:
    """Subscribe to every plc1 node, publish one sample each, see every change arrive."""
    rows = expectations(shift)
    ids = {row: await resolve(client, row.nodeid) for row in rows}
    changes = Changes()
    subscription = await client.create_subscription(50, changes)
    await subscription.subscribe_data_change([client.get_node(i) for i in ids.values()])
    await changes.wait_until(lambda: len(changes.last) == len(rows), "initial values")

    ts0 = 1_767_225_600_000 + shift * 1000  # 2026-01-01T00:00:00Z
    samples = samples_for(rows, ts0)
    await server.publish(samples)

    def all_seen() -> bool:
        return all(
            (dv := changes.last.get(ids[row])) is not None
            and dv.Value is not None and dv.Value.Value == row.seen
            and dv.SourceTimestamp == ts_datetime(sample.ts)
            for row, sample in zip(rows, samples, strict=True)
        )

    await changes.wait_until(all_seen, "change of every node to its published value")
    for row in rows:
        dv = changes.last[ids[row]]
        assert dv.StatusCode is not None and dv.StatusCode.is_good(), row
        assert dv.ServerTimestamp is not None
        assert abs((dv.ServerTimestamp - dt.datetime.now(dt.UTC)).total_seconds()) < WAIT_S
    await subscription.delete()


async def browse_tree(node: Node, prefix: tuple[Node, ...] = ()) -> dict[ua.NodeId, list[Node]]:
    """Every variable below `node` outside namespace 0: NodeId -> the nodes on its path."""
    found: dict[ua.NodeId, list[Node]] = {}
    for child in await node.get_children():
        if child.nodeid.NamespaceIndex == 0:
            continue  # the standard Server object and its kin
        node_class = await child.read_node_class()
        if node_class == ua.NodeClass.Variable:
            found[child.nodeid] = [*prefix, child]
        elif node_class == ua.NodeClass.Object:
            found.update(await browse_tree(child, (*prefix, child)))
    return found


# --- acceptance 2 ------------------------------------------------------------------------


async def test_browse_and_subscribe_every_line_node(plain_server: SimOpcuaServer) -> None:
    """(a) Objects -> a folder per line -> its nodes with the configured NodeIds and types;
    a subscription to all of them sees every published value with its SourceTimestamp."""
    async with Client(plain_server.endpoint_url, timeout=WAIT_S) as client:
        assert await client.nodes.server_state.read_value() == ua.ServerState.Running
        acme = await client.get_namespace_index(ACME)
        top = {}
        for child in await client.nodes.objects.get_children():
            name = await child.read_browse_name()
            top[(name.NamespaceIndex, name.Name)] = child
        assert {(2, "L1"), (2, "L2"), (2, "L3")} <= top.keys()

        for line in ("L1", "L2", "L3"):
            folder = top[(2, line)]
            assert await folder.read_node_class() == ua.NodeClass.Object
            tree = await browse_tree(folder, (folder,))
            rows = [row for row in expectations() if row.line == line]
            assert set(tree) == {await resolve(client, row.nodeid) for row in rows}, line
            for row in rows:
                nodes = tree[await resolve(client, row.nodeid)]
                names = []
                for node in nodes:
                    qname = await node.read_browse_name()
                    ns = "acme" if qname.NamespaceIndex == acme else str(qname.NamespaceIndex)
                    names.append(f"{ns}:{qname.Name}")
                assert tuple(names) == row.path, row
                assert await nodes[-1].read_data_type() == ua.NodeId(row.datatype), row
                access = await nodes[-1].read_attribute(ua.AttributeIds.AccessLevel)
                assert access.Value.Value == ua.AccessLevel.CurrentRead.mask, row

        await subscribe_and_check(client, plain_server, shift=0)


async def test_secure_sign_and_encrypt_with_password(secure_server: SimOpcuaServer,
                                                     client_pki: tuple[Path, Path]) -> None:
    """(b) With Basic256Sha256 only Sign and SignAndEncrypt endpoints, UserName tokens only;
    a SignAndEncrypt client with the right password browses, subscribes and sees changes."""
    probe = Client(secure_server.endpoint_url, timeout=WAIT_S)
    endpoints = await probe.connect_and_get_server_endpoints()
    offered = {(ep.SecurityPolicyUri, ep.SecurityMode) for ep in endpoints}
    assert offered == {
        (SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.Sign),
        (SecurityPolicyBasic256Sha256.URI, ua.MessageSecurityMode.SignAndEncrypt),
    }
    for ep in endpoints:
        assert [t.TokenType for t in ep.UserIdentityTokens] == [ua.UserTokenType.UserName]
        assert ep.ServerCertificate == secure_server.certificate_path.read_bytes()

    client = await secure_client(secure_server, client_pki)
    async with client:
        tree = await browse_tree(client.nodes.objects)
        assert await resolve(client, "ns=2;s=L1.Count.Total") in tree
        await subscribe_and_check(client, secure_server, shift=1)

    signed = await secure_client(secure_server, client_pki, mode=ua.MessageSecurityMode.Sign)
    async with signed:
        value = await signed.get_node("ns=2;s=L1.Count.Total").read_value()
        assert value == 1001  # written by subscribe_and_check(shift=1) above


async def test_wrong_password_is_refused(secure_server: SimOpcuaServer,
                                         client_pki: tuple[Path, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """(c) A wrong password, a wrong user, an anonymous session and a session on an
    unsecured channel are all refused."""
    wrong = await secure_client(secure_server, client_pki, password="not-the-password")
    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
        await wrong.connect()

    stranger = await secure_client(secure_server, client_pki, user="operator")
    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
        await stranger.connect()

    anonymous = await secure_client(secure_server, client_pki, user=None, password=None)
    with pytest.raises(ua.UaError):
        await anonymous.connect()

    # No None endpoint is offered; a client that opens an unsecured channel anyway and sends
    # the right password is refused by the server, not only by the client's endpoint check.
    plain = Client(secure_server.endpoint_url, timeout=WAIT_S)
    plain.set_user("edge")
    plain.set_password(PASSWORD)
    monkeypatch.setattr(Client, "find_endpoint", staticmethod(_any_endpoint))
    with pytest.raises(ua.uaerrors.BadUserAccessDenied):
        await plain.connect()


def _any_endpoint(endpoints: list[ua.EndpointDescription], security_mode: Any,
                  policy_uri: str) -> ua.EndpointDescription:
    """Pretend the SignAndEncrypt endpoint matches: its token policy lets the client send the
    password as is (the channel would be encrypted), here over an unsecured channel."""
    return next(ep for ep in endpoints
                if ep.SecurityMode == ua.MessageSecurityMode.SignAndEncrypt)


async def test_namespace_by_uri(plain_server: SimOpcuaServer) -> None:
    """(d) nsu=urn:acme:plc;s=L3.State registers that namespace; a client resolves it."""
    async with Client(plain_server.endpoint_url, timeout=WAIT_S) as client:
        namespaces = await client.get_namespace_array()
        assert namespaces[2] == "urn:linewatch:sim"
        assert ACME in namespaces
        acme = namespaces.index(ACME)
        assert acme > 2
        state = client.get_node(ua.NodeId("L3.State", acme))
        assert (await state.read_browse_name()) == ua.QualifiedName("State", acme)
        assert await state.read_data_type() == ua.NodeId(ua.ObjectIds.String)
        await plain_server.publish([Sample(1_767_225_601_234, "L3", "state", "JAM")])
        value = await state.read_data_value()
        assert value.Value is not None and value.Value.Value == "JAM"
        assert value.SourceTimestamp == ts_datetime(1_767_225_601_234)
        # the same id in the simulator's own namespace does not exist
        missing = await client.get_node(ua.NodeId("L3.State", 2)).read_attribute(
            ua.AttributeIds.Value, raise_on_bad_status=False)
        assert missing.StatusCode == ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)


async def test_samples_of_other_sources_are_ignored(plain_server: SimOpcuaServer) -> None:
    """(e) Signals of another OPC UA source, of MQTT, of unknown lines or names: no node is
    made for them and publishing them writes nothing."""
    async with Client(plain_server.endpoint_url, timeout=WAIT_S) as client:
        tree = await browse_tree(client.nodes.objects)
        names = {(await client.get_node(i).read_browse_name()).Name for i in tree}
        assert "Vibration" not in names and "humidity" not in names
        assert len(tree) == 27
        for text in ("ns=2;s=L1.Vibration", "ns=2;s=L2.Vibration"):
            read = await client.get_node(text).read_attribute(
                ua.AttributeIds.Value, raise_on_bad_status=False)
            assert read.StatusCode == ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)

        temperature = client.get_node("ns=2;s=L2.Temperature")
        await plain_server.publish([Sample(1_767_225_700_000, "L2", "temperature", 71.5)])
        before = plain_server.stats.written, plain_server.stats.ignored
        await plain_server.publish([
            Sample(1_767_225_700_001, "L2", "vibration", 3.0),      # plc2
            Sample(1_767_225_700_002, "L2", "humidity", 55.0),      # MQTT broker
            Sample(1_767_225_700_003, "L9", "temperature", 99.0),   # unknown line
            Sample(1_767_225_700_004, "L2", "pressure", 5.0),       # unknown signal
        ])
        assert plain_server.stats.written == before[0]
        assert plain_server.stats.ignored == before[1] + 4
        value = await temperature.read_data_value()
        assert value.Value is not None and value.Value.Value == 71.5
        assert value.SourceTimestamp == ts_datetime(1_767_225_700_000)


async def test_bad_quality_and_unfit_values(plain_server: SimOpcuaServer) -> None:
    """A bad-quality sample becomes a Bad status (S3 for the collector); a value that does not
    fit the node's data type is counted as rejected and leaves the node as it was."""
    async with Client(plain_server.endpoint_url, timeout=WAIT_S) as client:
        speed = client.get_node("ns=2;s=L1.Speed")
        total = client.get_node("ns=2;s=L1.Count.Total")
        await plain_server.publish([Sample(1_767_225_800_000, "L1", "speed", 40.0),
                                    Sample(1_767_225_800_000, "L1", "total_count", 500)])
        rejected = plain_server.stats.rejected
        await plain_server.publish([
            Sample(1_767_225_800_001, "L1", "speed", 0.0, Quality.BAD),
            Sample(1_767_225_800_002, "L1", "total_count", "twelve"),
            Sample(1_767_225_800_003, "L1", "total_count", 70000),  # > UInt16
            Sample(1_767_225_800_004, "L1", "total_count", -1),
        ])
        assert plain_server.stats.rejected == rejected + 3
        bad = await speed.read_data_value(raise_on_bad_status=False)
        assert bad.StatusCode is not None and bad.StatusCode.is_bad()
        assert bad.SourceTimestamp == ts_datetime(1_767_225_800_001)
        kept = await total.read_data_value()
        assert kept.Value is not None and kept.Value.Value == 500
        assert kept.SourceTimestamp == ts_datetime(1_767_225_800_000)
        await plain_server.publish([Sample(1_767_225_800_005, "L1", "speed", 41.0)])
        assert (await speed.read_value()) == 41.0


async def test_burst_does_not_starve_the_event_loop(plain_server: SimOpcuaServer) -> None:
    """(f) 3 lines x 9 nodes live, 9 of them at 1 Hz, plus a burst of 10,000 writes: a
    concurrent task keeps ticking and the client's subscription keeps receiving meanwhile.

    The client shares the server's event loop, so its own work counts in the gaps too. It asks
    for queue size 1 (the newest value per publishing interval): with asyncua's unbounded
    default the client's decoding of 10,000 notifications alone stalls the loop for ~0.5 s,
    which says nothing about the server (a collector runs in another process).
    """
    rows = expectations()
    async with Client(plain_server.endpoint_url, timeout=WAIT_S) as client:
        ids = {(row.line, row.signal): await resolve(client, row.nodeid) for row in rows}
        changes = Changes()
        subscription = await client.create_subscription(BURST_PUBLISH_MS, changes)
        await subscription.subscribe_data_change([client.get_node(i) for i in ids.values()],
                                                 queuesize=1)
        await changes.wait_until(lambda: len(changes.last) == len(rows), "initial values")

        gaps: list[float] = []
        ticking, stop = asyncio.Event(), asyncio.Event()

        async def ticker() -> None:
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now
                ticking.set()

        # The real-time runner's pace on the state, reason and product nodes; the burst
        # hits the other 18 (counters, energy, telemetry), so their final values are known.
        paced = [row for row in rows if row.signal in ("state", "reason", "product")]
        numeric = [row for row in rows if row not in paced]
        assert len(paced) == 9 and len(numeric) == 18

        async def one_hertz() -> None:
            second = 0
            while not stop.is_set():
                second += 1
                ts = 1_767_226_000_000 + second * 1000
                await plain_server.publish([Sample(ts, row.line, row.signal, row.value)
                                            for row in expectations(second)
                                            if row.signal in ("state", "reason", "product")])
                await asyncio.sleep(1.0)

        burst = [
            Sample(1_767_227_000_000 + i, numeric[i % len(numeric)].line,
                   numeric[i % len(numeric)].signal, 1 + i // len(numeric))
            for i in range(10_000)
        ]
        final = {(s.asset, s.signal): s for s in burst}  # last sample per node

        tasks = [asyncio.create_task(ticker()), asyncio.create_task(one_hertz())]
        try:
            await asyncio.wait_for(ticking.wait(), WAIT_S)
            gaps.clear()
            arrivals_before = len(changes.arrivals)
            started = time.monotonic()
            await plain_server.publish(burst)
            finished = time.monotonic()
            burst_gaps = list(gaps)
            burst_from = ts_datetime(burst[0].ts)
            during = [t for t, value in changes.arrivals[arrivals_before:]
                      if t < finished and value.SourceTimestamp is not None
                      and value.SourceTimestamp >= burst_from]

            await changes.wait_until(lambda: all(
                (dv := changes.last[ids[key]]).Value is not None
                and dv.Value.Value == sample.value
                and dv.SourceTimestamp == ts_datetime(sample.ts)
                for key, sample in final.items()), "the burst's last value on every node")
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        await subscription.delete()

    duration = finished - started
    max_gap = max(burst_gaps, default=duration)
    logger.info("burst of %d writes took %.3f s (%.0f writes/s); %d ticks, max gap %.1f ms; "
                "%d notifications during the burst", len(burst), duration,
                len(burst) / duration, len(burst_gaps), max_gap * 1000, len(during))
    # Unyielding writes would make one gap as long as the whole burst, whatever the machine.
    assert max_gap < 0.5
    assert max_gap < duration / 3, "the burst was not cut into pieces"
    if duration > 3 * BURST_PUBLISH_MS / 1000:  # else a fast machine finished between two publishes
        assert during, "the client received nothing while the burst was written"


# --- config-driven details ----------------------------------------------------------------


def test_server_certificate_is_generated_once_and_reused(tmp_path: Path) -> None:
    """The certificate is generated into pki_dir/own on first use and reused afterwards
    (a client that trusted it keeps trusting it); another application URI gets a new one.
    That start() serves it is checked by test_secure_sign_and_encrypt_with_password."""
    cert_path, key_path = ensure_certificate(tmp_path, "urn:linewatch:sim:plc1", "127.0.0.1")
    assert (cert_path, key_path) == (tmp_path / "own" / "cert.der", tmp_path / "own" / "key.pem")
    assert key_path.stat().st_mode & 0o077 == 0
    cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:linewatch:sim:plc1"]
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert socket.gethostname() in san.get_values_for_type(x509.DNSName)
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value

    created, key = cert_path.read_bytes(), key_path.read_bytes()
    ensure_certificate(tmp_path, "urn:linewatch:sim:plc1", "127.0.0.1")
    assert cert_path.read_bytes() == created and key_path.read_bytes() == key

    ensure_certificate(tmp_path, "urn:linewatch:sim:plc9", "127.0.0.1")
    assert cert_path.read_bytes() != created


@pytest.mark.parametrize(
    ("signals", "message"),
    [
        ('state: {source: plc1, node: "ns=0;s=L1.State"}', "namespace 0"),
        ('state: {source: plc1, node: "ns=2;s=L1.X"}\n'
         '      energy_kwh: {source: plc1, node: "ns=2;s=L1.X"}', "also mapped as"),
        ('state: {source: plc1, node: "ns=2;s=L1.Count"}\n'
         '      total_count: {source: plc1, node: "ns=2;s=L1.Count.Total"}', "not a folder"),
    ],
)
def test_config_that_cannot_be_served_is_refused(signals: str, message: str) -> None:
    config = parse_config(f"""
site: {{id: t}}
lines:
  - id: L1
    state_map: {{"1": running}}
    signals:
      {signals}
sources:
  opcua: [{{id: plc1, endpoint: "opc.tcp://127.0.0.1:4840"}}]
""")
    with pytest.raises(ValueError, match=message):
        SimOpcuaServer(config, config.sources.opcua[0])


@pytest.mark.parametrize("name", ["example.yaml", "demo.yaml"])
def test_shipped_configs_can_be_served(name: str) -> None:
    """Every OPC UA source of the shipped configs plans one node per distinct mapped node."""
    path = Path(__file__).resolve().parents[2] / "config" / name
    config = load_config(path)
    for source in config.sources.opcua:
        server = SimOpcuaServer(config, source, password="unused")
        mapped = {
            src.node or src.browse_path
            for line in config.lines
            for src in [*line.signals.roles().values(), *line.signals.telemetry]
            if src.source == source.id
        }
        assert server.node_count == len(mapped) > 0, source.id


def test_auth_without_password_is_refused(secure_config: PlantConfig) -> None:
    with pytest.raises(ValueError, match="expected a password"):
        SimOpcuaServer(secure_config, secure_config.sources.opcua[0])
