"""A private network namespace per desktop: its processes see only a loopback interface.

Attacker-controlled here: nothing directly (addresses come from policy, checked in `egress`); the
namespace is the limit itself — no interface but ``lo``, so only the gateway's relays lead out.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import subprocess
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

CLONE_NEWNET = 0x40000000
IP_TIMEOUT = 5.0  # seconds `ip` gets to configure the namespace's loopback

T = TypeVar("T")

_libc = ctypes.CDLL(None, use_errno=True)


class NamespaceError(OSError):
    """The kernel refused a namespace operation (no root, no CAP_SYS_ADMIN, seccomp, …)."""


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise NamespaceError(errno, f"{what}: {os.strerror(errno)}")


def _in_thread(work: Callable[[], T]) -> T:
    """Run ``work`` in a fresh thread and return its result.

    setns/unshare(CLONE_NEWNET) switch only the calling thread; a dedicated thread that ends
    afterwards can never hand a pool worker (or the event loop) back in the wrong namespace.
    """
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="staffroom-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def loopback_commands(addresses: Iterable[str]) -> str:
    """`ip -batch` input: bring ``lo`` up and give it every relayed non-loopback address."""
    lines = ["link set lo up"]
    for text in sorted(set(addresses)):
        address = ipaddress.ip_address(text)
        if address.is_loopback:
            continue  # 127.0.0.0/8 and ::1 are on lo already
        lines.append(f"addr add {address}/{address.max_prefixlen} dev lo")
    return "\n".join(lines) + "\n"


class NetNamespace:
    """An open handle on a namespace; it lives while this fd (or a process inside) does."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def create(cls, addresses: Iterable[str] = ()) -> NetNamespace:
        """Blocking: a new namespace with ``lo`` up and ``addresses`` on it."""
        batch = loopback_commands(addresses)

        def make() -> int:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
                fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    # A child forked from this thread starts in the thread's namespace.
                    subprocess.run(["ip", "-batch", "-"], input=batch.encode(), check=True,
                                   capture_output=True, timeout=IP_TIMEOUT)  # fmt: skip
                except (OSError, subprocess.SubprocessError) as exc:
                    os.close(fd)
                    raise NamespaceError(0, f"cannot set up its loopback: {exc}") from None
                finally:
                    _check(_libc.setns(home, CLONE_NEWNET), "setns(back)")
                return fd
            finally:
                os.close(home)

        return cls(_in_thread(make))

    def run(self, work: Callable[[], T]) -> T:
        """Blocking: call ``work`` inside the namespace (sockets it creates stay there)."""

        def inside() -> T:
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _check(_libc.setns(self.fd, CLONE_NEWNET), "setns")
                try:
                    return work()
                finally:
                    _check(_libc.setns(home, CLONE_NEWNET), "setns(back)")
            finally:
                os.close(home)

        return _in_thread(inside)

    def enter_prefix(self) -> list[str]:
        """Argv prefix that runs the rest of the command line inside the namespace.

        nsenter opens the namespace through our /proc entry, so the fd is not handed to the
        desktop's processes; nsenter exec()s without forking, so the pid is the command's.
        """
        return ["nsenter", f"--net=/proc/{os.getpid()}/fd/{self.fd}", "--"]

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
