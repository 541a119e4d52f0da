"""Which callback URLs vidqueue calls, and which address it connects to for one.

A job's owner chooses its callback URL, so without a check anyone who may
upload could make vidqueue send requests into the networks it runs in. A URL
is refused unless it is `http` or `https` and names a host, and, unless that
host is on `VIDQUEUE_WEBHOOK_ALLOW_HOSTS`, unless every address the host
resolves to is a public one: loopback, private, link-local, shared (CGNAT),
multicast and reserved addresses are refused, and so are the cloud metadata
services (`defaults.METADATA_ADDRESSES`).

The form is checked when a job is created (`accept_callback_url`); the
addresses are checked when a delivery is made, after DNS (`resolve_target`),
and the request then goes to the very address that was checked, so a name
that resolves somewhere else the second time (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from vidqueue import defaults
from vidqueue.errors import CallbackRefused, InvalidRequest
from vidqueue.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Target:
    """Where one attempt goes: the URL, and the checked addresses of its host."""

    url: str
    host: str
    """The URL's host name: the `Host` header and the name TLS checks."""
    addresses: tuple[str, ...]
    """The addresses checked for this attempt, in DNS's order; connections go
    to these and nowhere else."""

    def connect_url(self, address: str) -> str:
        """The URL with its host replaced by one of the checked addresses."""
        parts = urlsplit(self.url)
        literal = f"[{address}]" if ":" in address else address
        netloc = literal if parts.port is None else f"{literal}:{parts.port}"
        return parts._replace(netloc=netloc).geturl()

    @property
    def host_header(self) -> str:
        """The `Host` header the URL itself would send."""
        return urlsplit(self.url).netloc.rpartition("@")[2]

    @property
    def is_https(self) -> bool:
        """True for an `https` URL, whose TLS must check `host`."""
        return urlsplit(self.url).scheme == "https"


def accept_callback_url(settings: Settings, url: str | None) -> str:
    """A job's callback URL as it is stored ("" for none), or `InvalidRequest`.

    Checks the form and, for an address written in the URL itself, the
    address; host names are resolved only when a delivery is made.
    """
    if not url:
        return ""
    if not settings.webhooks_enabled:
        raise InvalidRequest(
            "this server sends no webhooks, so it takes no callbackUrl"
        )
    return check_callback_url(url, settings.webhook_allowed_hosts)


def check_callback_url(url: str, allow_hosts: frozenset[str] = frozenset()) -> str:
    """The URL unchanged if its form is acceptable, else `CallbackRefused`. No DNS."""
    if len(url) > defaults.WEBHOOK_MAX_URL_CHARS:
        raise CallbackRefused(
            f"the callback URL is longer than {defaults.WEBHOOK_MAX_URL_CHARS} "
            "characters"
        )
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS:
        raise CallbackRefused("the callback URL must start with http:// or https://")
    if not parts.hostname:
        raise CallbackRefused("the callback URL names no host")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise CallbackRefused("the callback URL's port is not a number") from None
    literal = _literal_address(parts.hostname)
    if literal is not None and parts.hostname not in allow_hosts:
        _refuse_unless_public(parts.hostname, literal)
    return url


def resolve_target(url: str, allow_hosts: frozenset[str] = frozenset()) -> Target:
    """Check `url`, resolve its host and check every address it has.

    Returns the target to connect to. Raises `CallbackRefused` for a URL or an
    address vidqueue may not call (any of the host's), and `OSError` when the
    name does not resolve (which may pass).
    """
    check_callback_url(url, allow_hosts)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(_address(info[4][0]) for info in infos))
    if host not in allow_hosts:
        for address in addresses:
            _refuse_unless_public(host, address)
    return Target(url=url, host=host, addresses=tuple(map(str, addresses)))


def is_public(address: Address) -> bool:
    """True for an address on the public internet that is no metadata service."""
    embedded = None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
    if embedded is not None and not is_public(embedded):
        return False
    if str(address) in defaults.METADATA_ADDRESSES:
        return False
    return address.is_global and not address.is_multicast


def redact(url: str) -> str:
    """The URL's scheme, host and port only: what logs may show of it."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}"


def _refuse_unless_public(host: str, address: Address) -> None:
    if not is_public(address):
        raise CallbackRefused(
            f"the callback host {host} is at {address}, a private, local or "
            "metadata address"
        )


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _address(text: str) -> Address:
    # getaddrinfo names link-local IPv6 addresses with their zone: fe80::1%eth0.
    return ipaddress.ip_address(text.partition("%")[0])
