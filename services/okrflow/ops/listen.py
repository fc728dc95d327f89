"""Listening on host:port: the listening socket uvicorn is handed, and the one line an
operator reads when okrflow cannot listen (port in use, not allowed, no such host)."""

from __future__ import annotations

import errno
import socket

from okrflow.exitcodes import ExitCode, OperatorError


def listen_error(exc: OSError, host: str, port: int, what: str, setting: str) -> OperatorError:
    """The one line for a failure to listen on host:port."""
    if exc.errno == errno.EADDRINUSE:
        return OperatorError(
            ExitCode.PORT_IN_USE,
            f"port {port} on {host} (for the {what}) is already in use; stop what holds it or "
            f"choose another port ({setting})",
        )
    if exc.errno == errno.EACCES:
        return OperatorError(
            ExitCode.PORT_IN_USE,
            f"not allowed to listen on port {port} for the {what} (ports below 1024 need "
            f"privileges; {setting})",
        )
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return OperatorError(
            ExitCode.USAGE,
            f"cannot listen on host {host!r} for the {what}: {exc.strerror or exc}",
        )
    return OperatorError(
        ExitCode.PORT_IN_USE, f"cannot listen on {host}:{port} for the {what}: {exc}"
    )


def listening_socket(host: str, port: int, *, what: str, setting: str) -> socket.socket:
    """A bound, listening TCP socket (for uvicorn's `sockets=`), or one OperatorError line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise listen_error(exc, host, port, what, setting) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise listen_error(exc, host, port, what, setting) from None
    sock.setblocking(False)
    return sock
