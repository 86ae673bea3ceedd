"""Small value checks shared by the config sections. Each raises ValueError with a message for people."""

from __future__ import annotations

import ipaddress
import re

# MicroK8s uses the host name as the Kubernetes node name, and it must be a lowercase DNS label.
# A DNS subdomain (dots allowed: the kubelet registers an FQDN host name whole), at most 63 characters,
# since the kubelet also writes it into the node's kubernetes.io/hostname label.
NODE_NAME_RE = re.compile(r"^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$"
)
LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_PREFIX_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
INTERFACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,14}$")
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DURATION_RE = re.compile(r"^(\d+)(s|m|h|d|w)$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def node_name(value: str) -> str:
    if value != value.lower():
        raise ValueError(f'must be lowercase (MicroK8s requires it), got "{value}"')
    if "_" in value:
        raise ValueError(f'must not contain "_" (MicroK8s requires it), got "{value}"')
    if not NODE_NAME_RE.match(value):
        raise ValueError(
            "must be a valid Kubernetes node name: lowercase letters, digits, '-' and '.', each dot-separated "
            f'part starting and ending with a letter or digit, at most 63 characters, got "{value}"'
        )
    return value


def host(value: str) -> str:
    if value == "local":
        return value
    if value.lower() == "local":
        raise ValueError(f'write "local" in lowercase to run on this machine, got "{value}"')
    try:
        return node_ip(value)
    except ValueError as error:
        if _looks_like_ip(value):
            raise error
    if value.lower() in ("localhost", "localhost.localdomain"):
        raise ValueError('"localhost" is not reachable from other nodes; use "local" to run on this machine')
    if not HOSTNAME_RE.match(value):
        raise ValueError(f'must be "local", an IP address or a DNS name, got "{value}"')
    return value.lower()


def ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f'must be an IP address, got "{value}"') from None


def _looks_like_ip(value: str) -> bool:
    return bool(re.match(r"^[0-9.]+$", value)) or ":" in value


def routable_ip(value: str) -> str:
    """An address other machines (or pods) can reach: not loopback, link-local or unspecified."""
    address = ipaddress.ip_address(ip_address(value))
    if address.is_loopback or address.is_link_local or address.is_unspecified or address.is_multicast:
        raise ValueError(f'must be an address other machines can reach (not loopback, link-local, '
                         f'multicast or unspecified), got "{value}"')
    return str(address)


def node_ip(value: str) -> str:
    """A node's address: routable IPv4 (MicroK8s joins and Calico here are IPv4)."""
    address = routable_ip(value)
    if ipaddress.ip_address(address).version != 4:
        raise ValueError(f'must be an IPv4 address (IPv6 node addresses are not supported yet), got "{value}"')
    return address


def interface(value: str) -> str:
    if not INTERFACE_RE.match(value):
        raise ValueError(f'must be a network interface name such as "ib0" or "enp1s0f1", got "{value}"')
    return value


def label_key(value: str) -> str:
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not LABEL_PREFIX_RE.match(prefix)):
        raise ValueError(f'label key "{value}" has an invalid prefix (must be a lowercase DNS name)')
    if not LABEL_NAME_RE.match(name):
        raise ValueError(
            f'label key "{value}" is invalid: the name part must be 1-63 letters, digits, '
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    return value


def label_value(key: str, value: str) -> str:
    if not LABEL_VALUE_RE.match(value):
        raise ValueError(
            f'label "{key}" has an invalid value "{value}": at most 63 letters, digits, '
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    return value


def duration_seconds(value: str | int, *, minimum: int = 1) -> int:
    """`90s`, `15m`, `2h`, `7d`, `1w` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration such as 30s, 15m, 2h or 7d, got {value}")
    if isinstance(value, int):
        seconds = value
    else:
        match = DURATION_RE.match(str(value).strip())
        if not match:
            raise ValueError(f'must be a duration such as 30s, 15m, 2h or 7d, got "{value}"')
        seconds = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds < minimum:
        raise ValueError(f"must be at least {minimum} seconds, got {seconds}")
    return seconds


def k8s_namespace(value: str) -> str:
    if not NAMESPACE_RE.match(value):
        raise ValueError(f'must be a valid Kubernetes namespace name (lowercase DNS label), got "{value}"')
    return value
