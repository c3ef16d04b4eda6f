"""Which Host names the server answers and which web origins may change its state.

DNS rebinding points a name the attacker controls at 127.0.0.1: the victim's browser
then treats aift as that name's own site, with no CORS in the way. The defence is the
Host header: a rebinding page always sends its own name, so answering only known names
(loopback names, IP literals, the bound name and `AIFT_ALLOWED_HOSTS`) shuts it out.
A cross-site page can still *send* requests (forms, `fetch` without preflight); those
carry an `Origin` (or at least `Sec-Fetch-Site`), which must be aift's own origin or
one the operator trusts (`AIFT_CORS_ORIGINS`). Clients that are not browsers send
neither header and are not affected.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of requests a user or aift's own pages make.
TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def split_host(value: str) -> tuple[str, int | None]:
    """`name:port`, `[v6]:port` or `name` → (lower-case name without brackets, port)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port_text = value.partition(":")
    else:  # a bare name, or an IPv6 literal without brackets (not valid in Host)
        name, port_text = value, ""
    port = int(port_text) if port_text.isdigit() else None
    return name.rstrip("."), port


def is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _machine_names() -> set[str]:
    """This machine's own names, which LAN users type when the server binds widely."""
    names = {socket.gethostname().lower()}
    try:
        names.add(socket.getfqdn().lower())
    except OSError:
        pass
    return {n for n in names if n}


@dataclass(frozen=True)
class HostPolicy:
    """The Host allow-list and the trusted origins of one server."""

    bound_host: str = "127.0.0.1"
    extra_hosts: tuple[str, ...] = ()
    trusted_origins: tuple[str, ...] = ()
    machine_names: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def build(
        cls, bound_host: str, extra_hosts: list[str], trusted_origins: list[str]
    ) -> HostPolicy:
        """The policy of a server bound to `bound_host`: when it accepts connections
        from other machines, its own host names are allowed too."""
        bound = bound_host.strip().lower()
        wide = bound in {"0.0.0.0", "::", ""} or not (
            bound == "localhost"
            or (is_ip_literal(bound) and ipaddress.ip_address(bound).is_loopback)
        )
        return cls(
            bound_host=bound,
            extra_hosts=tuple(h.strip().lower().rstrip(".") for h in extra_hosts if h.strip()),
            trusted_origins=tuple(o.strip().lower().rstrip("/") for o in trusted_origins),
            machine_names=frozenset(_machine_names() if wide else ()),
        )

    def host_allowed(self, host_header: str | None) -> bool:
        """Whether a request naming this Host is for us (a missing Host is no browser's)."""
        if host_header is None:
            return True
        name, _ = split_host(host_header)
        if not name:
            return False
        if is_ip_literal(name) or name == "localhost" or name.endswith(".localhost"):
            return True  # rebinding needs a DNS name of the attacker's: never an IP literal
        if name == self.bound_host or name in self.machine_names:
            return True
        for entry in self.extra_hosts:
            if entry == "*" or name == entry:
                return True
            if entry.startswith(".") and (name.endswith(entry) or name == entry[1:]):
                return True
        return False

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        """An Origin is ours when it names the host and port the request was sent to,
        or when the operator trusts it (AIFT_CORS_ORIGINS). `null` never is."""
        origin = origin.strip().lower().rstrip("/")
        if origin in self.trusted_origins:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname or host_header is None:
            return False
        try:
            origin_port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            return False
        name, port = split_host(host_header)
        return parts.hostname == name and origin_port == (port or DEFAULT_PORTS[parts.scheme])

    def cross_site_reason(
        self, method: str, origin: str | None, fetch_site: str | None, host: str | None
    ) -> str | None:
        """Why a state-changing browser request must be refused, or None to let it in.

        Safe methods pass (they change nothing and CORS keeps their answers from other
        sites); requests without Origin and Sec-Fetch-Site come from non-browser clients.
        """
        if method.upper() in SAFE_METHODS:
            return None
        if origin is not None:
            if self.origin_allowed(origin, host):
                return None
            return (
                f"A page from {origin[:100]} may not change anything on this server. "
                "Trust its origin with AIFT_CORS_ORIGINS if it is yours."
            )
        if fetch_site is not None and fetch_site.strip().lower() not in TRUSTED_FETCH_SITES:
            return "A request from another site may not change anything on this server."
        return None
