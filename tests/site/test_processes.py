"""Listening sockets for several server processes, and the refusal to share a busy port."""

from __future__ import annotations

import socket

import pytest

from streamsite.processes import PortBusy, listen

pytestmark = pytest.mark.no_redis


def test_it_opens_one_socket_per_server_on_one_port():
    sockets = listen("127.0.0.1", 0, count=3)
    try:
        ports = {sock.getsockname()[1] for sock in sockets}
        assert len(ports) == 1
        assert all(sock.get_inheritable() for sock in sockets)
        with socket.create_connection(("127.0.0.1", ports.pop()), timeout=5):
            pass  # one of them accepts it
    finally:
        for sock in sockets:
            sock.close()


def test_a_port_held_by_another_server_is_busy_even_with_reuseport():
    first = listen("127.0.0.1", 0, count=2)
    try:
        port = first[0].getsockname()[1]
        with pytest.raises(PortBusy, match=f"Port {port} on 127.0.0.1 is busy"):
            listen("127.0.0.1", port, count=2)
    finally:
        for sock in first:
            sock.close()
