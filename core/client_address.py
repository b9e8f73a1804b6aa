"""The address a request comes from, as the anonymous rate limit and the admin lockout see it.

`X-Forwarded-For` is written by whoever sends the request; only the entries our own proxies
appended can be believed. TRUSTED_PROXY_HOPS says how many proxies of ours stand in front
of the app: with 0 the header is ignored and the client is the connection's peer
(REMOTE_ADDR); with N the client is the address the outermost of them saw, the N-th entry
from the right, and anything the client wrote to the left of it is ignored.
"""

from django.conf import settings
from django.http import HttpRequest
from ipware import get_client_ip


def client_ip_address(request: HttpRequest) -> str | None:
    """Return the client's address, counting TRUSTED_PROXY_HOPS proxies in front of us."""
    peer = request.META.get("REMOTE_ADDR")
    hops: int = settings.TRUSTED_PROXY_HOPS
    if hops == 0:
        return peer
    # ipware counts the proxies listed in the header after the client; the innermost proxy
    # is the peer itself, not listed. Not strict: a client may prepend entries of its own.
    # A header with fewer entries than that did not pass through our proxies: use the peer.
    address, _routable = get_client_ip(
        request,
        proxy_order="left-most",
        proxy_count=hops - 1,
        request_header_order=["HTTP_X_FORWARDED_FOR"],
        strict=False,
    )
    return address or peer
