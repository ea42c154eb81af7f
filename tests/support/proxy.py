"""A TCP proxy in front of a real PostgreSQL that loses connections on cue.

Connection loss is a network event, so it is made by the network: the proxy relays bytes
between clients and the server (its Unix socket or TCP port) and, when told to, cuts a
connection at an exact protocol moment: when the client starts a COPY (the server rolls the
transaction back), or just after the server has answered COMMIT (the transaction is durable
but the client never hears so: the in-doubt case a retry must not duplicate). `refuse()`
makes it reject new connections, like a server that is down; a cut can switch that on in the
same instant (a crash: the client's retries find no server until the test lets them in).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from psycopg.conninfo import conninfo_to_dict, make_conninfo

COMMIT = b"Q\x00\x00\x00\x0bCOMMIT\x00"  # a simple-protocol Query message "COMMIT"
# The SDK's COPY statements. Not "COPY " alone: the comments sent with a query may name COPY
# (the id allocation's does), and a cut there would come before the batch took its ids.
COPY = b"COPY drift."


def drop(sockets: list[socket.socket]) -> None:
    """Close both directions now. close() alone leaves the connection open while the other
    relay thread is blocked in recv() on it: the server would never see it drop and would keep
    the cut transaction (and its locks) open."""
    for s in sockets:
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            s.close()


class FaultProxy:
    def __init__(self, server_url: str) -> None:
        params = conninfo_to_dict(server_url)
        host = str(params.get("host") or "/tmp")
        port = int(params.get("port") or 5432)
        self._target: tuple[int, Any] = (
            (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}") if host.startswith("/") else (socket.AF_INET, (host, port))
        )
        self._params = {k: v for k, v in params.items() if k not in ("host", "port", "hostaddr")}
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._cut: str | None = None  # "copy" | "after_commit", one-shot
        self._refusing = False
        self._refuse_after_cut = False
        self.cuts: list[str] = []  # what was cut, in order
        self._sockets: list[socket.socket] = []
        self._stopped = False
        self._swallow: set[socket.socket] = set()  # server sockets whose next answer is dropped
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, dbname: str | None = None) -> str:
        params = {**self._params, "host": "127.0.0.1", "port": str(self.port), "sslmode": "disable"}
        if dbname:
            params["dbname"] = dbname
        return make_conninfo("", **params)

    def cut_next(self, moment: str, *, then_refuse: bool = False) -> None:
        """Cut the next connection that reaches `moment` ("copy" or "after_commit").

        then_refuse: from the cut on, refuse new connections until `refuse(False)`, so nothing
        the client retries reaches the server before the test has done what a crash does.
        """
        assert moment in ("copy", "after_commit")
        with self._lock:
            self._cut = moment
            self._refuse_after_cut = then_refuse

    def refuse(self, on: bool = True) -> None:
        """Reject new connections and drop the open ones (on), or accept again (off)."""
        with self._lock:
            self._refusing = on
            sockets, self._sockets = (list(self._sockets), []) if on else ([], self._sockets)
        drop(sockets)

    def close(self) -> None:
        self._stopped = True
        self.refuse(True)
        self._listener.close()

    # -- relaying --------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                client.close()
                continue
            server = socket.socket(self._target[0], socket.SOCK_STREAM)
            try:
                server.connect(self._target[1])
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._client_to_server, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    def _take(self, moment: str, data: bytes) -> bool:
        marker = COMMIT if moment == "after_commit" else COPY
        with self._lock:
            if self._cut == moment and marker in data:
                self._cut = None
                self._refusing = self._refusing or self._refuse_after_cut
                self.cuts.append(moment)
                return True
        return False

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                if self._take("copy", data):
                    break  # never forwarded: the server sees the connection drop mid-transaction
                if self._take("after_commit", data):
                    # The server commits and answers; the answer is dropped with the connection.
                    self._swallow.add(server)
                    server.sendall(data)
                    return  # the server-to-client pipe closes both on the answer
                server.sendall(data)
        except OSError:
            pass
        drop([client, server])

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if src in self._swallow:
                    break
                dst.sendall(data)
        except OSError:
            pass
        drop([src, dst])


@contextlib.contextmanager
def fault_proxy(server_url: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(server_url)
    try:
        yield proxy
    finally:
        proxy.close()
