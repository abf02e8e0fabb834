"""A simulated PLC: an asyncua OPC UA server that exposes the lines of one OPC UA source.

`SimOpcuaServer` implements `simulator.publisher.Publisher`. It is config-driven: every
signal (role or telemetry) of every line whose ``source`` is this server's source id gets a
variable node, and `publish` writes each mapped sample into it with its SourceTimestamp.

Node layout (docs/simulator.md):

* ``node: "ns=<n>;s=<id>"`` / ``node: "nsu=<uri>;s=<id>"``: the variable gets exactly that
  NodeId. It sits under ``Objects/<line id>`` (a folder per line); the string id is split on
  ``.``, a leading ``<line id>`` segment is dropped, the middle segments become nested
  folders and the last one the browse name: ``ns=2;s=L1.Count.Total`` is
  ``Objects/L1/Count/Total``. A folder's NodeId is the dotted path of its browse names in
  its own namespace (``ns=2;s=L1``, ``ns=2;s=L1.Count``), like a PLC structure and its
  members. A non-string identifier (``i=``, ``g=``, ``b=``) is browsed as the signal name.
* ``browse_path: "0:Objects/2:L1/2:PowerMeter/2:EnergyTotal"``: folders are created along the
  path (a leading ``Objects`` is optional) and the variable's NodeId is
  ``ns=<ns of the last segment>;s=<the names after Objects joined by '.'>``.
* Namespaces: 0 is OPC UA's, 1 the server's application URI (``urn:linewatch:sim:<source
  id>``), 2 ``urn:linewatch:sim``, then every ``nsu=`` URI in config order; an ``ns=<n>``
  beyond those is filled with ``urn:linewatch:sim:ns<n>``.
* Data types like a PLC: state and reason UInt16 when every raw value of the line's
  ``state_map`` / ``reason_map`` is an integer 0–65535, String otherwise (text states, or no
  reason_map: raw reason values are codes); counters UInt16 / UInt32 / UInt64 by their
  ``counter_max``; product String; energy and telemetry Double. Variables are read-only and
  hold BadWaitingForInitialData until their first sample, so a collector never takes a made-
  up 0 as a counter baseline.

Security: with ``security.policy: Basic256Sha256`` the server offers only Basic256Sha256 Sign
and SignAndEncrypt endpoints (no None endpoint, as a commissioned PLC), and refuses a session
on an unsecured channel; its certificate and key are generated on first start into
``<pki_dir>/own/``. Any client certificate is accepted (no client trust list). With ``auth``
only UserName tokens are offered and a wrong user or password is refused with
BadUserAccessDenied; without ``auth`` only anonymous sessions.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asyncua import Server, ua
from asyncua.crypto import cert_gen, uacrypto
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.user_managers import UserManager
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from linewatch.canonical import canonical_value
from linewatch.config import COUNT_ROLES, Line, OpcuaSource, PlantConfig, SignalSource
from linewatch.sample import Sample

__all__ = ["SIM_NAMESPACE", "PublishStats", "SimOpcuaServer", "ensure_certificate"]

logger = logging.getLogger(__name__)

SIM_NAMESPACE = "urn:linewatch:sim"
_OPCUA_NAMESPACE = "http://opcfoundation.org/UA/"
DEFAULT_PORT = 4840
# Writes between two yields to the event loop. A write costs ~25-40 µs with one subscribed
# client (up to ~200 µs when the client asks for an unbounded queue), so a chunk holds the
# loop for a few milliseconds.
WRITE_CHUNK = 100
_UINT_MAX = {
    ua.VariantType.UInt16: 65535,
    ua.VariantType.UInt32: 4294967295,
    ua.VariantType.UInt64: 18446744073709551615,
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_GOOD = ua.StatusCode(ua.StatusCodes.Good)
_BAD_QUALITY = ua.StatusCode(ua.StatusCodes.BadNoCommunication)
_WAITING = ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData)

Key = tuple[str, str]  # (line id, role or telemetry name)
BrowseName = tuple[int, str]  # a browse name: (namespace index, name)
BrowsePath = tuple[BrowseName, ...]  # browse names from Objects down


@dataclass
class PublishStats:
    """What `publish` did with the samples it was given, since start."""

    written: int = 0  # samples written to a node
    ignored: int = 0  # samples of signals this source does not map
    rejected: int = 0  # samples whose value does not fit the node's data type


@dataclass
class _Variable:
    nodeid: ua.NodeId
    name: BrowseName
    parent: BrowsePath  # folder path under Objects
    vtype: ua.VariantType
    keys: list[Key] = field(default_factory=list)


class _SharedDataValue(ua.DataValue):
    """A DataValue the server may share instead of deep-copying it per monitored item.

    asyncua deep-copies every written DataValue once per monitored item (~0.1-0.25 ms, most
    of a write's cost). Ours are built fresh for one write, hold only immutable scalars and
    are never changed afterwards, so the copy can be the value itself: with one subscriber
    the server takes about five times more writes per second (measured 6-8k -> 37-46k/s).
    It encodes exactly as a DataValue.
    """

    __slots__ = ()

    def __deepcopy__(self, memo: dict[int, Any]) -> _SharedDataValue:
        return self


@dataclass(frozen=True)
class _Binding:
    nodeid: ua.NodeId
    vtype: ua.VariantType
    convert: Callable[[object], Any]


class _AccessManager(UserManager):
    """Users of the simulated PLC: one username/password, or anonymous; optionally only on a
    signed channel (a peer certificate is present only on a Sign / SignAndEncrypt channel)."""

    def __init__(self, username: str | None, password: str | None, secure_only: bool):
        self._username = username.encode() if username is not None else None
        self._password = (password or "").encode()
        self._secure_only = secure_only

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if self._secure_only and not certificate:  # b"" on an unsecured channel
            logger.warning("refused a session on an unsecured channel")
            return None
        if self._username is None:
            return User(role=UserRole.User)
        given_user = (username or "").encode()
        given_password = (password or "").encode()
        user_ok = hmac.compare_digest(given_user, self._username)
        password_ok = hmac.compare_digest(given_password, self._password)
        if user_ok and password_ok:
            return User(role=UserRole.User, name=username)
        logger.warning("refused user %r: wrong username or password", username)
        return None


class SimOpcuaServer:
    """An OPC UA server for the lines of one `OpcuaSource`; a `Publisher`."""

    def __init__(
        self,
        config: PlantConfig,
        source: OpcuaSource,
        host: str = "127.0.0.1",
        port: int | None = None,
        password: str | None = None,
        pki_dir: Path | None = None,
    ):
        if source.auth is not None and password is None:
            raise ValueError(
                f"source {source.id!r} has auth: expected a password (from "
                f"{source.auth.password_env or source.auth.password_file})"
            )
        self.config = config
        self.source = source
        self.host = host
        parsed = urlparse(source.endpoint)
        self.port = (parsed.port or DEFAULT_PORT) if port is None else port
        self._path = parsed.path
        self._password = password
        self.pki_dir = pki_dir or Path("data/pki/simulator") / source.id
        self.secure = source.security.policy != "None"
        self.application_uri = f"{SIM_NAMESPACE}:{source.id}"
        self.namespaces, self._variables, self._folders = _plan(config, source)
        self._bindings: dict[Key, _Binding] = {}
        self._server: Server | None = None
        self._lock = asyncio.Lock()
        self._warned: set[Key] = set()
        self.stats = PublishStats()

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """The endpoint clients connect to (the bound port once started)."""
        port = self._server.bserver.port if self._server and self._server.bserver else self.port
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"opc.tcp://{host}:{port}{self._path}"

    @property
    def certificate_path(self) -> Path:
        """The server certificate (DER), created on first start with security on."""
        return self.pki_dir / "own" / "cert.der"

    @property
    def node_count(self) -> int:
        return len(self._variables)

    async def start(self) -> None:
        """Build the address space from the config and listen; returns when ready."""
        if self._server is not None:
            raise RuntimeError("SimOpcuaServer already started")
        server = Server(user_manager=self._access_manager())
        await server.init()
        server.set_endpoint(self.endpoint_url)
        server.set_server_name(f"linewatch simulator {self.source.id}")
        await server.set_application_uri(self.application_uri)
        await self._register_namespaces(server)
        if self.secure:
            cert, key = await asyncio.to_thread(
                ensure_certificate, self.pki_dir, self.application_uri, self.host)
            await server.load_certificate(cert)
            await server.load_private_key(key)
            server.set_security_policy([
                ua.SecurityPolicyType.Basic256Sha256_Sign,
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
            ])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if self.source.auth is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        else:
            server.set_identity_tokens([ua.AnonymousIdentityToken])
        await self._build_address_space(server)
        await server.start()
        self._server = server
        logger.info(
            "OPC UA simulator %s listening on %s: %d nodes, %d lines, security %s%s",
            self.source.id, self.endpoint_url, self.node_count,
            len({k[0] for v in self._variables for k in v.keys}),
            "Basic256Sha256 Sign/SignAndEncrypt" if self.secure else "None",
            f", user {self.source.auth.username}" if self.source.auth else ", anonymous",
        )

    async def stop(self) -> None:
        """Stop listening and drop every session; idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        await server.stop()
        logger.info("OPC UA simulator %s stopped", self.source.id)

    async def __aenter__(self) -> SimOpcuaServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- publishing ---------------------------------------------------------------------

    async def publish(self, samples: Sequence[Sample]) -> None:
        """Write every sample this source maps into its node, in the given (time) order.

        Yields to the event loop every `WRITE_CHUNK` writes so that sessions,
        subscriptions and keep-alives are served during a burst.
        """
        server = self._server
        if server is None:
            raise RuntimeError("SimOpcuaServer.publish before start")
        async with self._lock:
            bindings = self._bindings
            stats = self.stats
            write = server.write_attribute_value
            since_yield = 0
            for sample in samples:
                binding = bindings.get((sample.asset, sample.signal))
                if binding is None:
                    stats.ignored += 1
                    continue
                source_ts = _EPOCH + dt.timedelta(milliseconds=sample.ts)
                if sample.good:
                    try:
                        variant = ua.Variant(binding.convert(sample.value), binding.vtype)
                    except (TypeError, ValueError, OverflowError) as err:
                        self._reject(sample, binding, err)
                        continue
                    status = _GOOD
                else:
                    variant = ua.Variant(None, ua.VariantType.Null)
                    status = _BAD_QUALITY
                value = _SharedDataValue(
                    Value=variant,
                    StatusCode=status,
                    SourceTimestamp=source_ts,
                    ServerTimestamp=dt.datetime.now(dt.UTC),
                )
                await write(binding.nodeid, value)
                stats.written += 1
                since_yield += 1
                if since_yield >= WRITE_CHUNK:
                    await asyncio.sleep(0)
                    since_yield = 0
                    if self._server is not server:
                        logger.info("OPC UA simulator %s stopped during a publish; the rest "
                                    "of it is dropped", self.source.id)
                        return

    def _reject(self, sample: Sample, binding: _Binding, err: Exception) -> None:
        self.stats.rejected += 1
        key = (sample.asset, sample.signal)
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(
                "line %s signal %s: value %r does not fit %s node %s (%s); skipped "
                "(logged once per signal)",
                sample.asset, sample.signal, sample.value, binding.vtype.name,
                binding.nodeid.to_string(), err,
            )

    # --- building -----------------------------------------------------------------------

    def _access_manager(self) -> _AccessManager:
        auth = self.source.auth
        return _AccessManager(
            auth.username if auth else None, self._password, secure_only=self.secure
        )

    async def _register_namespaces(self, server: Server) -> None:
        for index, uri in enumerate(self.namespaces, start=2):
            got = await server.register_namespace(uri)
            if got != index:
                raise RuntimeError(f"namespace {uri!r} registered as {got}, expected {index}")

    async def _build_address_space(self, server: Server) -> None:
        nodes: dict[BrowsePath, Any] = {(): server.nodes.objects}
        for path, nodeid in self._folders.items():  # parents come before children
            nodes[path] = await nodes[path[:-1]].add_folder(nodeid, _qname(path[-1]))
        for var in self._variables:
            await nodes[var.parent].add_variable(
                var.nodeid, _qname(var.name), ua.Variant(_initial(var.vtype), var.vtype)
            )
            await server.write_attribute_value(
                var.nodeid, ua.DataValue(StatusCode=_WAITING, ServerTimestamp=_now())
            )
            convert = _converter(var.vtype)
            for key in var.keys:
                self._bindings[key] = _Binding(var.nodeid, var.vtype, convert)


# --- the server certificate ----------------------------------------------------------------


def ensure_certificate(pki_dir: Path, application_uri: str, host: str) -> tuple[Path, Path]:
    """The server certificate (``<pki_dir>/own/cert.der``) and key (``key.pem``, mode 0600).

    Generated when absent, expired or made for another application URI or hostname (RSA 2048,
    SHA-256, one year); otherwise reused, so a client that trusted it once keeps trusting it.
    Subject alternative names: the application URI, this host's name, localhost, 127.0.0.1
    and `host`.
    """
    own = pki_dir / "own"
    cert_path, key_path = own / "cert.der", own / "key.pem"
    hostname = socket.gethostname()
    if cert_path.is_file() and key_path.is_file():
        cert = x509.load_der_x509_certificate(cert_path.read_bytes())
        if not uacrypto.check_certificate(cert, application_uri, hostname):
            return cert_path, key_path
        logger.info("server certificate %s does not fit (expired, or another URI or host); "
                    "generating a new one", cert_path)
    own.mkdir(parents=True, exist_ok=True)
    key = cert_gen.generate_private_key()
    key_path.touch(mode=0o600, exist_ok=True)
    key_path.chmod(0o600)
    key_path.write_bytes(cert_gen.dump_private_key_as_pem(key))
    names: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(application_uri),
        x509.DNSName(hostname),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    cert = cert_gen.generate_self_signed_app_certificate(
        key, f"linewatch simulator ({application_uri})", {"organizationName": "linewatch"},
        list(dict.fromkeys(names)), extended=[ExtendedKeyUsageOID.SERVER_AUTH], days=365,
    )
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    logger.info("generated server certificate %s", cert_path)
    return cert_path, key_path


# --- the plan: which nodes a config asks for ----------------------------------------------


def _plan(
    config: PlantConfig, source: OpcuaSource
) -> tuple[list[str], list[_Variable], dict[BrowsePath, ua.NodeId]]:
    """Namespaces (from index 2), variables and folders (parents first) for one source.

    Raises ValueError naming the line and signal when the config asks for nodes that cannot
    coexist (one NodeId as folder and variable, one NodeId with two data types, ns=0).
    """
    signals: list[tuple[Line, str, SignalSource]] = []
    for line in config.lines:
        mapped: list[tuple[str, SignalSource]] = list(line.signals.roles().items())
        mapped += [(t.name, t) for t in line.signals.telemetry]
        signals += [(line, name, src) for name, src in mapped if src.source == source.id]

    uris = [SIM_NAMESPACE]
    parsed: list[tuple[Line, str, SignalSource, ua.NodeId | None]] = []
    for line, name, src in signals:
        nodeid = None
        if src.node:
            try:
                nodeid = ua.NodeId.from_string(src.node)
            except Exception as err:  # asyncua raises several kinds
                raise ValueError(f"line {line.id} signal {name}: {src.node!r} is not a NodeId "
                                 f"({err})") from err
            uri = getattr(nodeid, "NamespaceUri", None)
            if uri and uri not in uris and uri != _OPCUA_NAMESPACE:
                uris.append(uri)
        parsed.append((line, name, src, nodeid))

    def ns_index(uri: str) -> int:
        return 0 if uri == _OPCUA_NAMESPACE else 2 + uris.index(uri)

    variables: dict[ua.NodeId, _Variable] = {}
    by_path: dict[BrowsePath, ua.NodeId] = {}
    folders: dict[BrowsePath, ua.NodeId] = {}
    max_ns = 1 + len(uris)

    for line, name, src, given in parsed:
        where = f"line {line.id} signal {name}"
        if given is not None:
            uri = getattr(given, "NamespaceUri", None)
            ns = ns_index(uri) if uri else given.NamespaceIndex
            if ns == 0:
                raise ValueError(f"{where}: {src.node!r} is in namespace 0, which belongs to "
                                 "OPC UA; use ns=2 (urn:linewatch:sim) or nsu=<your uri>")
            nodeid = ua.NodeId(given.Identifier, ns, given.NodeIdType)
            parts = [name]
            if isinstance(given.Identifier, str):
                rest = given.Identifier.removeprefix(f"{line.id}.")
                parts = [p for p in rest.split(".") if p] or parts
            path: BrowsePath = ((2, line.id), *((ns, p) for p in parts))
        else:
            assert src.browse_path is not None  # cross_check guarantees node or browse_path
            path = _browse_path(src.browse_path, where)
            if not path:
                raise ValueError(f"{where}: browse_path {src.browse_path!r} names no node")
            ns = path[-1][0]
            nodeid = ua.NodeId(_dotted(path), ns)
        max_ns = max(max_ns, *(n for n, _ in path), nodeid.NamespaceIndex)
        vtype = _variant_type(line, name, src)
        var = variables.get(nodeid)
        if var is not None:  # one node read as two signals (e.g. by two lines)
            if var.vtype != vtype:
                raise ValueError(f"{where}: node {nodeid.to_string()} is also mapped as "
                                 f"{var.vtype.name}, here as {vtype.name}")
            var.keys.append((line.id, name))
            continue
        if path in by_path or path in folders:
            raise ValueError(f"{where}: two nodes at {_show(path)}")
        for depth in range(1, len(path)):
            folder_path = path[:depth]
            if folder_path in by_path:
                raise ValueError(f"{where}: {_show(folder_path)} is a variable, not a folder")
            if folder_path not in folders:
                folders[folder_path] = ua.NodeId(_dotted(folder_path), folder_path[-1][0])
        variables[nodeid] = _Variable(nodeid, path[-1], path[:-1], vtype, [(line.id, name)])
        by_path[path] = nodeid

    clash = set(variables) & set(folders.values())
    if clash:
        raise ValueError(f"NodeId {min(n.to_string() for n in clash)} would be both a variable "
                         "and a folder")
    uris += [f"{SIM_NAMESPACE}:ns{n}" for n in range(len(uris) + 2, max_ns + 1)]
    ordered_folders = dict(sorted(folders.items(), key=lambda item: len(item[0])))
    return uris, list(variables.values()), ordered_folders


def _browse_path(text: str, where: str) -> BrowsePath:
    parts = [p for p in text.strip().split("/") if p]
    try:
        qnames = [ua.QualifiedName.from_string(p) for p in parts]
    except Exception as err:
        raise ValueError(f"{where}: browse_path {text!r} is not n:Name/n:Name/… ({err})") from err
    names = [(q.NamespaceIndex, q.Name) for q in qnames]
    if names and names[0] == (0, "Objects"):
        names = names[1:]
    for ns, name in names:
        if ns == 0:
            raise ValueError(f"{where}: browse_path {text!r}: {name!r} is in namespace 0; "
                             "write 2:Name for the simulator's namespace")
    return tuple(names)


def _dotted(path: BrowsePath) -> str:
    return ".".join(label for _, label in path)


def _qname(name: BrowseName) -> ua.QualifiedName:
    return ua.QualifiedName(name[1], name[0])


def _show(path: BrowsePath) -> str:
    return "Objects/" + "/".join(f"{ns}:{name}" for ns, name in path)


def _all_uint16(keys: Iterable[str]) -> bool:
    values = list(keys)
    if not values:
        return False
    for raw in values:
        text = canonical_value(raw)
        if not text.isdigit() or int(text) > 65535:
            return False
    return True


def _variant_type(line: Line, name: str, src: SignalSource) -> ua.VariantType:
    if name == "state":
        return ua.VariantType.UInt16 if (not line.state_map or _all_uint16(line.state_map)) \
            else ua.VariantType.String
    if name == "reason":
        return ua.VariantType.UInt16 if _all_uint16(line.reason_map) else ua.VariantType.String
    if name == "product":
        return ua.VariantType.String
    if name in COUNT_ROLES:
        counter_max = src.counter_max or line.counter_max
        for vtype in (ua.VariantType.UInt16, ua.VariantType.UInt32):
            if counter_max <= _UINT_MAX[vtype]:
                return vtype
        return ua.VariantType.UInt64
    return ua.VariantType.Double  # energy_kwh and telemetry


def _initial(vtype: ua.VariantType) -> Any:
    return "" if vtype == ua.VariantType.String else 0.0 if vtype == ua.VariantType.Double else 0


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _converter(vtype: ua.VariantType) -> Callable[[object], Any]:
    if vtype == ua.VariantType.String:
        return lambda value: value if isinstance(value, str) else canonical_value(value)
    if vtype == ua.VariantType.Double:
        return _to_float
    limit = _UINT_MAX[vtype]

    def to_uint(value: object) -> int:
        if isinstance(value, bool):
            raise TypeError("a boolean is not a count")
        if isinstance(value, int):
            number = value
        else:
            text = canonical_value(value)
            if not text.lstrip("-").isdigit():
                raise ValueError("not an integer")
            number = int(text)
        if not 0 <= number <= limit:
            raise OverflowError(f"outside 0..{limit}")
        return number

    return to_uint


def _to_float(value: object) -> float:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a number")
    return float(value)  # type: ignore[arg-type]
