"""OPC UA collector: reads the nodes one `OpcuaSource` maps and hands them on as Samples.

`OpcuaCollector` is an async context manager (DESIGN §3, §5, §8). Entering it starts a
supervisor task that connects, resolves every mapped node (``nsu=`` through the server's
namespace array on every connect, ``browse_path`` through TranslateBrowsePathsToNodeIds),
then subscribes (one subscription, publishing interval ``interval_ms``) or polls (Read
every ``interval_ms``), with CreateMonitoredItems / Read split to respect the server's
MaxMonitoredItemsPerCall / MaxNodesPerRead. A dead session (transport closed, keep-alive
read of Server.ServerStatus.State failing or not Running, a bad subscription status) emits
one bad-quality sample per mapped signal (S3) and reconnects with exponential backoff,
re-resolving namespaces and re-creating the subscription. Only standard services are used.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncua import Client, Node, ua
from asyncua.common.subscription import Subscription
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from linewatch.config import ROLES, OpcuaSource, PlantConfig, SignalSource, read_secret
from linewatch.sample import Quality, Sample

__all__ = ["CollectorStats", "OpcuaCollector", "OpcuaCollectorError"]

logger = logging.getLogger(__name__)

OnSamples = Callable[[list[Sample]], Awaitable[None]]

DEFAULT_CHUNK = 1000  # items per call when the server reports no limit (0) or none at all
_MAX_NODES_PER_READ = ua.NodeId(
    ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead)
_MAX_ITEMS_PER_CALL = ua.NodeId(
    ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall)
_SERVER_STATE = ua.NodeId(ua.ObjectIds.Server_ServerStatus_State)
_RUNNING = ua.ServerState.Running
_FILTER_REFUSED = {
    ua.StatusCodes.BadFilterNotAllowed,
    ua.StatusCodes.BadMonitoredItemFilterUnsupported,
    ua.StatusCodes.BadMonitoredItemFilterInvalid,
    ua.StatusCodes.BadDeadbandFilterInvalid,
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ONE_MS = dt.timedelta(milliseconds=1)
_MODES = {
    "Sign": ua.MessageSecurityMode.Sign,
    "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt,
}


class OpcuaCollectorError(Exception):
    """A problem with one OPC UA source that retrying alone will not fix (config, trust)."""


@dataclass
class CollectorStats:
    """Self-metrics of one collector since it was created."""

    connects: int = 0  # sessions established
    connect_errors: int = 0  # failed connection attempts
    disconnects: int = 0  # established sessions that ended (lost, or stopped)
    samples: int = 0  # samples handed to on_samples (bad ones included)
    bad_samples: int = 0  # of those, bad quality
    batches: int = 0  # on_samples calls that returned normally
    callback_errors: int = 0  # on_samples calls that raised
    reads: int = 0  # Read requests (poll mode)
    read_errors: int = 0  # failed Read requests (bad values count in bad_samples)
    monitored_item_calls: int = 0  # CreateMonitoredItems requests
    unresolved: int = 0  # mapped signals that could not be resolved on the last connect
    last_error: str | None = None  # the last connection / session error, for health


@dataclass(frozen=True)
class _Signal:
    asset: str  # line id
    name: str  # role or telemetry name
    spec: SignalSource


class OpcuaCollector:
    """Collects the signals one OPC UA source maps as `Sample`s; an async context manager."""

    def __init__(
        self,
        config: PlantConfig,
        source: OpcuaSource,
        on_samples: OnSamples,
        password: str | None = None,
        *,
        pki_dir: Path | None = None,
        max_backoff_s: float = 5.0,
        keepalive_s: float = 1.0,
        request_timeout_s: float = 4.0,
        queue_size: int | None = None,
        deadband: float | None = None,
        max_items_per_call: int | None = None,
        application_uri: str | None = None,
    ):
        self.config = config
        self.source = source
        self._on_samples = on_samples
        if source.auth is not None and password is None:
            password = read_secret(source.auth.password_env, source.auth.password_file)
        self._password = password
        # Arguments override the source's config keys (tests and tools); the config is the rule.
        self.pki_dir = pki_dir or source.pki_dir or Path("data/pki/collector") / source.id
        self.max_backoff_s = max_backoff_s
        self.keepalive_s = keepalive_s
        self.request_timeout_s = request_timeout_s
        self.queue_size = queue_size if queue_size is not None else source.queue_size
        # absolute deadband for telemetry-only nodes (subscribe mode)
        self.deadband = deadband if deadband is not None else source.deadband
        self._handle = 0  # client handles of monitored items
        # client-side cap on nodes per Read / CreateMonitoredItems, below the server's limits
        self.max_items_per_call = max_items_per_call
        self.application_uri = application_uri or f"urn:linewatch:collector:{source.id}"
        self.signals = _mapped_signals(config, source.id)
        self.stats = CollectorStats()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._bad_emitted = False
        self._lost: asyncio.Event | None = None
        self._was_up = False
        self._handler: _Handler | None = None
        self._last: dict[int, tuple[Any, ...]] = {}  # poll mode: last emitted per signal

    # --- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> OpcuaCollector:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def start(self) -> None:
        """Start the supervisor task (connect, read, reconnect) in the background."""
        if self._task is not None:
            raise RuntimeError("OpcuaCollector already started")
        self._task = asyncio.create_task(self.run(), name=f"opcua-collector-{self.source.id}")

    async def stop(self) -> None:
        """Stop the supervisor and close the session; idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float) -> None:
        """Wait until a session is up and reading; TimeoutError otherwise."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def run(self) -> None:
        """Supervise the session forever: connect, collect, and on loss back off and retry."""
        delay = 0.25
        while True:
            self._was_up = False
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # every failure of a session ends in a retry
                self.stats.last_error = _describe(err)
                logger.warning("OPC UA source %s (%s): %s; retrying in %.2f s", self.source.id,
                               self.source.endpoint, self.stats.last_error, delay)
            self._connected.clear()
            if self._was_up:
                delay = 0.25  # a session that came up resets the backoff
            if not self._bad_emitted:  # S3: silence must never read as the last good value
                self._bad_emitted = True
                await self._emit([Sample(_now_ms(), s.asset, s.name, None, Quality.BAD)
                                  for s in self.signals])
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_backoff_s)

    # --- one session --------------------------------------------------------------------

    async def _session(self) -> None:
        """Connect, resolve, collect until the session dies (raises) or the task is cancelled."""
        client: Client | None = None
        try:
            client = await self._make_client()
            await client.connect()
        except BaseException as err:
            if not isinstance(err, asyncio.CancelledError):
                self.stats.connect_errors += 1
            if client is not None:
                await _close(client)
            raise
        lost = asyncio.Event()
        self._lost = lost

        async def on_lost(exc: Exception) -> None:
            logger.info("OPC UA source %s: connection lost (%r)", self.source.id, exc)
            lost.set()

        client.connection_lost_callback = on_lost
        try:
            self.stats.connects += 1
            nodes = await self._resolve(client)
            read_limit, items_limit = await self._limits(client)
            self._last.clear()
            if self.source.mode == "subscribe":
                await self._subscribe(client, nodes, items_limit)
                self._up()
                await self._supervise(client, lost)
            else:
                self._up()
                await self._poll(client, nodes, read_limit, lost)
        finally:
            if self._connected.is_set():
                self.stats.disconnects += 1
            self._lost = None
            handler, self._handler = self._handler, None
            if handler is not None:  # values received before the loss go before its S3 samples
                await handler.drain()
            await _close(client)

    def _up(self) -> None:
        self._was_up = True
        self._bad_emitted = False
        self._connected.set()
        logger.info("OPC UA source %s: session up on %s (%s mode, %d signals)",
                    self.source.id, self.source.endpoint, self.source.mode, len(self.signals))

    async def _make_client(self) -> Client:
        """A configured, not yet connected client (security, certificate, user)."""
        client = Client(self.source.endpoint, timeout=self.request_timeout_s,
                        watchdog_intervall=self.keepalive_s)
        client.application_uri = self.application_uri
        client.name = client.description = f"linewatch collector {self.source.id}"
        client.session_timeout = max(30_000, int(self.keepalive_s * 10_000))
        security = self.source.security
        if security.policy == "Basic256Sha256":
            cert, key = await self._client_certificate(client)
            mode = _MODES[security.mode]
            server_cert = await self._server_certificate(client, mode)
            await client.set_security(SecurityPolicyBasic256Sha256, str(cert), str(key),
                                      server_certificate=server_cert, mode=mode)
        if self.source.auth is not None:
            client.set_user(self.source.auth.username)
            client.set_password(self._password or "")
        return client

    async def _client_certificate(self, client: Client) -> tuple[Path, Path]:
        """The configured certificate and key, or ones generated on first start in pki_dir."""
        security = self.source.security
        if security.certificate is not None and security.private_key is not None:
            return security.certificate, security.private_key
        own = self.pki_dir / "own"
        cert, key = own / "cert.der", own / "key.pem"
        existed = cert.is_file() and key.is_file()
        await client.setup_self_signed_certificate(
            key, cert, {"organizationName": "linewatch"}, host_name=socket.gethostname())
        key.chmod(0o600)
        if not existed:
            logger.info("OPC UA source %s: generated client certificate %s", self.source.id,
                        cert)
        return cert, key

    async def _server_certificate(self, client: Client, mode: ua.MessageSecurityMode) -> bytes:
        """The server's certificate from GetEndpoints, checked against trust_dir if given."""
        endpoints = await asyncio.wait_for(client.connect_and_get_server_endpoints(),
                                           self.request_timeout_s * 2)
        endpoint = Client.find_endpoint(endpoints, mode, SecurityPolicyBasic256Sha256.URI)
        der = x509.load_der_x509_certificate(endpoint.ServerCertificate).public_bytes(
            Encoding.DER)
        trust_dir = self.source.security.trust_dir
        if trust_dir is None:
            return der
        if der not in _trusted(trust_dir):
            rejected = self.pki_dir / "rejected"
            rejected.mkdir(parents=True, exist_ok=True)
            path = rejected / f"{hashlib.sha1(der).hexdigest()}.der"  # the thumbprint
            path.write_bytes(der)
            raise OpcuaCollectorError(
                f"server certificate of {self.source.endpoint} is not in trust_dir "
                f"{trust_dir}; saved to {path} (copy it there to trust it)")
        return der

    async def _resolve(self, client: Client) -> dict[ua.NodeId, list[int]]:
        """NodeId -> indexes into self.signals; unresolvable signals get one bad sample."""
        namespaces = await client.get_namespace_array()
        nodes: dict[ua.NodeId, list[int]] = {}
        failed: list[Sample] = []
        for index, signal in enumerate(self.signals):
            try:
                nodeid = await self._resolve_one(client, namespaces, signal.spec)
            except Exception as err:
                logger.error("OPC UA source %s: line %s signal %s: cannot resolve %s: %s",
                             self.source.id, signal.asset, signal.name,
                             signal.spec.node or signal.spec.browse_path, _describe(err))
                failed.append(Sample(_now_ms(), signal.asset, signal.name, None, Quality.BAD))
                continue
            nodes.setdefault(nodeid, []).append(index)
        self.stats.unresolved = len(failed)
        if failed:
            await self._emit(failed)
        return nodes

    async def _resolve_one(self, client: Client, namespaces: Sequence[str],
                           spec: SignalSource) -> ua.NodeId:
        """One signal's NodeId on this server (nsu= via the namespace array, browse paths)."""
        if spec.node:
            given = ua.NodeId.from_string(spec.node)
            uri = getattr(given, "NamespaceUri", None)
            if not uri:
                return given
            if uri not in namespaces:
                raise OpcuaCollectorError(f"namespace {uri!r} is not in the server's "
                                          "namespace array")
            return ua.NodeId(given.Identifier, namespaces.index(uri), given.NodeIdType)
        assert spec.browse_path is not None
        parts = [p for p in spec.browse_path.strip().split("/") if p]
        if parts and ua.QualifiedName.from_string(parts[0]) == ua.QualifiedName("Objects", 0):
            parts = parts[1:]
        node = await client.nodes.objects.get_child(parts)
        return node.nodeid

    async def _limits(self, client: Client) -> tuple[int, int]:
        """(MaxNodesPerRead, MaxMonitoredItemsPerCall), DEFAULT_CHUNK where not limited."""
        try:
            values = await client.uaclient.read_attributes(
                [_MAX_NODES_PER_READ, _MAX_ITEMS_PER_CALL], ua.AttributeIds.Value)
        except ua.UaError as err:
            logger.info("OPC UA source %s: operation limits unreadable (%s)", self.source.id,
                        err)
            values = []
        limits = []
        for dv in values or [None, None]:
            value = dv.Value.Value if dv is not None and _is_good(dv) and \
                dv.Value is not None else None
            limit = int(value) if isinstance(value, int) and value > 0 else DEFAULT_CHUNK
            if self.max_items_per_call is not None:
                limit = min(limit, self.max_items_per_call)
            limits.append(limit)
        return limits[0], limits[1]

    # --- subscribe mode -----------------------------------------------------------------

    async def _subscribe(self, client: Client, nodes: dict[ua.NodeId, list[int]],
                         items_limit: int) -> None:
        """One subscription; monitored items created in chunks of at most items_limit."""
        handler = self._handler = _Handler(self, nodes)
        subscription = await client.create_subscription(float(self.source.interval_ms), handler)
        ids = list(nodes)
        failed: list[ua.NodeId] = []
        for start in range(0, len(ids), items_limit):
            chunk = ids[start:start + items_limit]
            filtered = [self.deadband is not None and self._telemetry_only(nodes[n])
                        for n in chunk]
            results = await self._monitor(subscription, chunk, filtered)
            retry = [n for n, f, r in zip(chunk, filtered, results, strict=True)
                     if f and isinstance(r, ua.StatusCode) and r.value in _FILTER_REFUSED]
            if retry:  # a server may refuse a deadband (e.g. on a non-numeric node)
                logger.info("OPC UA source %s: deadband refused for %d nodes; monitoring "
                            "them without it", self.source.id, len(retry))
                again = dict(zip(retry, await self._monitor(subscription, retry,
                                                             [False] * len(retry)),
                                 strict=True))
                results = [again.get(n, r) for n, r in zip(chunk, results, strict=True)]
            for nodeid, result in zip(chunk, results, strict=True):
                if isinstance(result, ua.StatusCode):
                    logger.error("OPC UA source %s: cannot monitor %s: %s", self.source.id,
                                 nodeid.to_string(), result.name)
                    failed.append(nodeid)
        if failed:
            self.stats.unresolved += sum(len(nodes[n]) for n in failed)
            await self._emit([self._bad(i) for n in failed for i in nodes[n]])

    async def _monitor(self, subscription: Subscription, nodeids: list[ua.NodeId],
                       filtered: list[bool]) -> list[int | ua.StatusCode]:
        """One CreateMonitoredItems call: Value, sampling interval_ms, queue_size, deadband."""
        requests = []
        for nodeid, with_filter in zip(nodeids, filtered, strict=True):
            self._handle += 1
            params = ua.MonitoringParameters(
                ClientHandle=self._handle, SamplingInterval=float(self.source.interval_ms),
                QueueSize=self.queue_size, DiscardOldest=True)
            if with_filter:
                params.Filter = ua.DataChangeFilter(
                    Trigger=ua.DataChangeTrigger.StatusValue,
                    DeadbandType=ua.DeadbandType.Absolute, DeadbandValue=self.deadband)
            requests.append(ua.MonitoredItemCreateRequest(
                ItemToMonitor=ua.ReadValueId(NodeId=nodeid, AttributeId=ua.AttributeIds.Value),
                MonitoringMode=ua.MonitoringMode.Reporting, RequestedParameters=params))
        self.stats.monitored_item_calls += 1
        return await subscription.create_monitored_items(requests)

    def _telemetry_only(self, indexes: list[int]) -> bool:
        """True when every signal read from a node is telemetry (roles are never deadbanded)."""
        return all(self.signals[i].name not in ROLES for i in indexes)

    async def _supervise(self, client: Client, lost: asyncio.Event) -> None:
        """Return never; raise ConnectionError when the session is dead (keep-alive)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.keepalive_s)
            if lost.is_set():
                raise ConnectionError("session lost")
            await self._check_alive(client)

    async def _check_alive(self, client: Client) -> None:
        """Read Server.ServerStatus.State; raise ConnectionError unless Running."""
        try:
            dv = await asyncio.wait_for(
                client.uaclient.read_attributes([_SERVER_STATE], ua.AttributeIds.Value),
                self.request_timeout_s)
        except (OSError, TimeoutError, ua.UaError) as err:
            raise ConnectionError(f"keep-alive failed: {_describe(err)}") from err
        state = dv[0].Value.Value if dv and dv[0].Value is not None else None
        if state != _RUNNING:
            raise ConnectionError(f"server state is {state!r}, not Running")

    # --- poll mode ----------------------------------------------------------------------

    async def _poll(self, client: Client, nodes: dict[ua.NodeId, list[int]], read_limit: int,
                    lost: asyncio.Event) -> None:
        """Read every node every interval_ms, in chunks of at most read_limit; raise on loss."""
        ids = list(nodes)
        interval = self.source.interval_ms / 1000
        next_at = time.monotonic()
        last_alive = next_at
        while not lost.is_set():
            batch: list[Sample] = []
            for start in range(0, len(ids), read_limit):
                chunk = ids[start:start + read_limit]
                try:
                    values = await asyncio.wait_for(
                        client.uaclient.read_attributes(chunk, ua.AttributeIds.Value),
                        self.request_timeout_s)
                except (OSError, TimeoutError, ua.UaError) as err:
                    self.stats.read_errors += 1
                    raise ConnectionError(f"read failed: {_describe(err)}") from err
                self.stats.reads += 1
                received = _now_ms()
                for nodeid, dv in zip(chunk, values, strict=True):
                    for index in nodes[nodeid]:
                        sample = self._sample(index, dv, received)
                        key = (sample.ts, sample.value, sample.quality)
                        if self._last.get(index) != key:  # unchanged values are not repeated
                            self._last[index] = key
                            batch.append(sample)
            if batch:
                await self._emit(batch)
            now = time.monotonic()
            if not ids and now - last_alive >= self.keepalive_s:
                await self._check_alive(client)
                last_alive = now
            next_at = max(next_at + interval, now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), max(0.0, next_at - time.monotonic()))
        raise ConnectionError("session lost")

    # --- samples ------------------------------------------------------------------------

    def _sample(self, index: int, dv: ua.DataValue, received_ms: int) -> Sample:
        """The Sample of one DataValue for signal `index` (S2 timestamp rule, quality)."""
        signal = self.signals[index]
        rule = self.source.timestamp
        when = None
        if rule == "source":
            when = dv.SourceTimestamp or dv.ServerTimestamp
        elif rule == "server":
            when = dv.ServerTimestamp
        ts = _ms(when) if when is not None else received_ms
        value = dv.Value.Value if dv.Value is not None else None
        good = _is_good(dv) and value is not None
        return Sample(ts, signal.asset, signal.name, value, Quality.GOOD if good else Quality.BAD)

    def _bad(self, index: int) -> Sample:
        signal = self.signals[index]
        return Sample(_now_ms(), signal.asset, signal.name, None, Quality.BAD)

    async def _emit(self, samples: list[Sample]) -> None:
        """Hand a batch to on_samples; a callback that raises is logged and counted."""
        if not samples:
            return
        self.stats.samples += len(samples)
        self.stats.bad_samples += sum(1 for s in samples if not s.good)
        try:
            await self._on_samples(samples)
        except Exception:
            self.stats.callback_errors += 1
            logger.exception("OPC UA source %s: on_samples raised; %d samples not delivered",
                             self.source.id, len(samples))
        else:
            self.stats.batches += 1

    def _status_change(self, status: ua.StatusChangeNotification) -> None:
        """A subscription status change (e.g. BadTimeout): the session is treated as lost."""
        logger.warning("OPC UA source %s: subscription status %s", self.source.id,
                       status.Status.name)
        if self._lost is not None and not status.Status.is_good():
            self._lost.set()


class _Handler:
    """Subscription handler: collects data changes into batches for one collector."""

    def __init__(self, collector: OpcuaCollector, nodes: dict[ua.NodeId, list[int]]):
        self._collector = collector
        self._nodes = nodes
        self._pending: list[Sample] = []
        self._flush: asyncio.Task[None] | None = None

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        """Map one data change to Samples; flushed as one batch once the loop yields."""
        try:
            received = _now_ms()
            dv = data.monitored_item.Value
            for index in self._nodes.get(node.nodeid, ()):
                self._pending.append(self._collector._sample(index, dv, received))
            if self._flush is None or self._flush.done():
                self._flush = asyncio.get_running_loop().create_task(self._deliver())
        except Exception:
            logger.exception("OPC UA data change for %s could not be mapped", node)

    def status_change_notification(self, status: ua.StatusChangeNotification) -> None:
        """Forward a subscription status change to the collector."""
        self._collector._status_change(status)

    async def drain(self) -> None:
        """Deliver what is pending now (at the end of a session)."""
        if self._flush is not None and not self._flush.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._flush), 2.0)

    async def _deliver(self) -> None:
        await asyncio.sleep(0)  # let the other notifications of this publish arrive
        while self._pending:
            batch, self._pending = self._pending, []
            await self._collector._emit(batch)


# --- helpers -------------------------------------------------------------------------------


def _mapped_signals(config: PlantConfig, source_id: str) -> list[_Signal]:
    """Every (line, role or telemetry name) whose source is `source_id`, in config order."""
    out: list[_Signal] = []
    for line in config.lines:
        mapped: list[tuple[str, SignalSource]] = list(line.signals.roles().items())
        mapped += [(t.name, t) for t in line.signals.telemetry]
        out += [_Signal(line.id, name, spec) for name, spec in mapped
                if spec.source == source_id]
    return out


def _trusted(trust_dir: Path) -> set[bytes]:
    """DER bytes of every certificate (.der, .pem, .crt) in trust_dir."""
    found: set[bytes] = set()
    for path in sorted(trust_dir.glob("*")):
        data = path.read_bytes() if path.is_file() else b""
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                found.add(x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER))
            elif data:
                found.add(x509.load_der_x509_certificate(data).public_bytes(Encoding.DER))
        except ValueError:
            logger.warning("trust_dir: %s is not a certificate; ignored", path)
    return found


async def _close(client: Client) -> None:
    """Disconnect quietly, bounded in time (the server may be gone)."""
    try:
        await asyncio.wait_for(client.disconnect(), 2.0)
    except Exception:
        logger.debug("disconnect failed", exc_info=True)


def _is_good(dv: ua.DataValue) -> bool:
    """An omitted StatusCode means Good (OPC UA Part 4)."""
    return dv.StatusCode is None or dv.StatusCode.is_good()


def _describe(err: BaseException) -> str:
    text = str(err) or repr(err)
    return f"{type(err).__name__}: {text}"


def _ms(when: dt.datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - _EPOCH) // _ONE_MS


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
