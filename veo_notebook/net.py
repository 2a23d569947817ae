"""The one loopback rule: is this host name or address this machine, over loopback only?

Shared by the stages, not a public verb (not in ``veo_notebook.__all__``).

Used where the toolkit decides what may go over plain http (the client), what may be
told "you are listening on loopback" (the callback receiver), where the simulator may
POST a callback and who may use its admin routes. One rule, so the four agree:

* an IP literal in ``127.0.0.0/8`` or ``::1`` (brackets ``[::1]``, an IPv6 zone
  ``%lo`` and IPv4-mapped ``::ffff:127.0.0.1`` accepted);
* ``localhost`` and every ``*.localhost`` name, in any case, with or without the final
  dot (RFC 6761 reserves them for loopback);
* nothing else: not ``0.0.0.0`` or ``::`` (every interface, not loopback), not a private
  address, not ``localhost.example.com``.

A name is judged by its spelling, never resolved: whoever connects to it still checks
where it resolves when that matters (the simulator's callback sender does).

>>> is_loopback("127.0.0.1"), is_loopback("[::1]"), is_loopback("a.localhost")
(True, True, True)
>>> is_loopback("0.0.0.0"), is_loopback("localhost.example.com"), is_loopback(None)
(False, False, False)
"""

from __future__ import annotations

import ipaddress

__all__ = ["LOOPBACK_NAME", "is_loopback"]

#: The reserved loopback name (and the parent of every ``*.localhost`` name).
LOOPBACK_NAME = "localhost"


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` (a name or an IP literal, as in a URL or a socket address) is loopback.

    >>> [is_loopback(h) for h in ("127.5.5.5", "::1", "LOCALHOST.", "10.0.0.1", "")]
    [True, True, True, False, False]
    """
    if not host:
        return False
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    name = text.lower().removesuffix(".")
    if name == LOOPBACK_NAME or (
        name.endswith("." + LOOPBACK_NAME) and not name.startswith(".") and ".." not in name
    ):
        return True
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback
