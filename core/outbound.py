"""The one guard every outbound connection goes through (webhook deliveries, SMTP, anything later).

A target a client names (a webhook URL, an SMTP host) must not reach our own network: not
loopback, private (RFC 1918, fc00::/7), link-local (169.254/16 with the cloud metadata
service, fe80::/10), CGNAT (100.64/10), unspecified, multicast, reserved or otherwise not
globally routable, nor an IPv6 form of one (IPv4-mapped, NAT64, 6to4), nor a metadata host
name. Every address a name resolves to must pass: one bad record refuses the target.

`vet_url`/`vet_host` return the vetted `Target`; a caller connects to `target.address`
(sending `target.host` as the Host header / TLS server name), never resolving the name again,
so a DNS answer that changes after the check (rebinding) cannot redirect the connection.

`WEBHOOK_ALLOW_INSECURE_TARGETS` (local development only; production refuses it) also
allows http:// URLs and loopback addresses, e.g. a receiver on http://127.0.0.1:8080/.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that reach a cloud provider's instance metadata, whatever they resolve to here.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "metadata.azure.com",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
        "metadata.platformequinix.com",
    }
)
CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
DEFAULT_PORTS = {"https": 443, "http": 80}


class OutboundRefused(Exception):
    """The target is not one we connect to; `str()` says why, fit for a client."""


class OutboundUnresolved(OutboundRefused):
    """The name does not resolve (now): nothing to connect to, nothing known to be wrong."""


@dataclass(frozen=True)
class Target:
    """A vetted destination: connect to `address`, name it `host`."""

    host: str
    port: int
    address: str
    addresses: tuple[str, ...]
    scheme: str | None = None


def _insecure_allowed() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_INSECURE_TARGETS", False))


def address_problem(address: IPAddress) -> str | None:
    """Say why we must not connect to this address, or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return address_problem(embedded)
    if address.is_loopback:
        return None if _insecure_allowed() else "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_unspecified:
        return "an unspecified address"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "a site-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in CGNAT:
        return "a shared (CGNAT) address"
    if address.is_private:
        return "a private address"
    if address.is_reserved or not address.is_global:
        return "a reserved address"
    return None


def vet_host(host: str, port: int) -> Target:
    """Resolve `host` and return the target if every address it has is public.

    Raise OutboundUnresolved if the name does not resolve, OutboundRefused otherwise.
    """
    name = host.strip().rstrip(".").lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if not name:
        raise OutboundRefused("Names no host.")
    if name in METADATA_HOSTS:
        raise OutboundRefused(f"{host} is a cloud metadata host; only public hosts are allowed.")
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, ValueError):
        raise OutboundUnresolved(f"{host} does not resolve.") from None
    addresses: list[str] = []
    for _family, _type, _proto, _canonical, sockaddr in infos:
        literal = str(sockaddr[0]).split("%", 1)[0]
        problem = address_problem(ipaddress.ip_address(literal))
        if problem:
            raise OutboundRefused(
                f"{host} is or resolves to {problem}; only public hosts are allowed."
            )
        if literal not in addresses:
            addresses.append(literal)
    if not addresses:
        raise OutboundUnresolved(f"{host} does not resolve.")
    return Target(host=name, port=port, address=addresses[0], addresses=tuple(addresses))


def vet_url(url: str, *, schemes: tuple[str, ...] = ("https",)) -> Target:
    """Vet a URL's scheme and host (see `vet_host`); http:// only with insecure targets on."""
    parts = urlsplit(url)
    allowed = schemes + (("http",) if _insecure_allowed() and "https" in schemes else ())
    if parts.scheme not in allowed:
        raise OutboundRefused(f"Must be an {'/'.join(s + '://' for s in schemes)} URL.")
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    except ValueError:
        raise OutboundRefused("Has an invalid port.") from None
    target = vet_host(parts.hostname or "", port)
    return Target(
        host=target.host,
        port=target.port,
        address=target.address,
        addresses=target.addresses,
        scheme=parts.scheme,
    )
