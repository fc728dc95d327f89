"""Which process listens on a local TCP port: to tell okrflow's own broker from someone else's.

Read from /proc (the listening socket's inode in /proc/net/tcp and tcp6, then the process
whose file descriptors hold that socket), as `ss -ltnp` does. Written here rather than with
psutil: it is these two lookups, and psutil would be a dependency of the whole package for them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp
# Addresses a listener on 127.0.0.1:port may hold the port through: loopback or wildcard.
_V4 = ("0100007F", "00000000")
_V6 = ("00000000000000000000000001000000", "00000000000000000000000000000000",
       "0000000000000000FFFF00000100007F")  # fmt: skip


@dataclass(frozen=True)
class PortHolder:
    """A process listening on the port; `pid` None when the socket's owner cannot be seen
    (another user's process, another namespace)."""

    pid: int | None
    command: str

    def describe(self) -> str:
        if self.pid is None:
            return "a process this user cannot see"
        _, kafka, config = self.command.partition("kafka.Kafka")
        if kafka:  # the classpath before it is long; its config file names its state folder
            return f"another Kafka broker (pid {self.pid}, config {config.strip() or '?'})"
        return f"a process that is not okrflow's broker (pid {self.pid}: {self.command[:100]})"


def port_holder(port: int, proc: Path = Path("/proc")) -> PortHolder | None:
    """The process listening on 127.0.0.1:`port` (or on every address), None if none is."""
    inodes = _listening_inodes(port, proc)
    if not inodes:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    return PortHolder(int(entry.name), _command(entry))
        except OSError:  # gone, or not ours to read
            continue
    return PortHolder(None, "")


def _listening_inodes(port: int, proc: Path) -> set[str]:
    wanted = f"{port:04X}"
    inodes: set[str] = set()
    for table, addresses in (("tcp", _V4), ("tcp6", _V6)):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] != _LISTEN:
                continue
            address, _, local_port = fields[1].partition(":")
            if local_port == wanted and address in addresses:
                inodes.add(fields[9])
    return inodes


def _command(entry: Path) -> str:
    try:
        return entry.joinpath("cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (OSError, UnicodeDecodeError):
        return "?"
