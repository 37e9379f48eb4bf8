"""HTTP/2 where the registry offers it, HTTP/1.1 otherwise (issue 19).

Debian's docker-registry (Go's net/http) speaks HTTP/2 over TLS, offered by
ALPN. A listing then fetches its manifests as streams of ONE connection; over
plain HTTP it uses HTTP/1.1 connections, at most -o parallel of them. The
connections are counted by a TCP relay in front of the registry, and the
daemon's debug lines say which protocol each request used.
"""
import asyncio
import json
import os
import socket
import ssl
import threading

import pytest

from test_auth import (USER, AuthRegistry, TokenServer, auth_b64, e, pki,  # noqa: F401
                       run_foreground, stop_foreground)
from util import HELM_CHART, HELM_CONFIG

N_TAGS = 100
REPO = "h2/many"


class CountingRelay:
    """A TCP relay to 127.0.0.1:port that counts the connections it
    accepts; TLS and HTTP/2 pass through untouched."""

    def __init__(self, port):
        self.port = port
        self.accepted = 0
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.host = "127.0.0.1:%d" % self.lsock.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            self.accepted += 1
            u = socket.create_connection(("127.0.0.1", self.port))
            self.socks += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.lsock.close()
        for s in self.socks:
            s.close()


@pytest.fixture
def relays():
    made = []
    yield lambda port: made.append(CountingRelay(port)) or made[-1]
    for r in made:
        r.close()


def many_tags(reg):
    """N_TAGS chart tags of REPO, each manifest its own (an annotation):
    {tag: digest}. Pushed over plain HTTP before the registry is restarted
    with TLS or auth."""
    cfg = dict(reg.push_blob(REPO, b'{"name":"many","version":"0.1.0"}'),
               mediaType=HELM_CONFIG)
    layer = dict(reg.push_blob(REPO, b"\x1f\x8b not really a chart"), mediaType=HELM_CHART)
    digests = {}
    for i in range(N_TAGS):
        tag = "0.1.%d" % i
        man = {"schemaVersion": 2, "config": cfg, "layers": [layer],
               "annotations": {"n": str(i)}}
        digests[tag] = reg.push_manifest(REPO, tag, json.dumps(man).encode())
    return digests


def check_listing(mnt, digests):
    path = os.path.join(mnt, REPO)
    names = os.listdir(path)
    assert sorted(n for n in names if not n.endswith(".tgz")) == sorted(digests)
    for tag, digest in digests.items():
        p = os.path.join(path, tag)
        os.stat(p)
        assert os.getxattr(p, "user.oci.digest").decode() == digest


def request_lines(log, path_part):
    return [l for l in log.splitlines() if "client: GET " in l and path_part in l
            and " -> " in l]


def test_tls_listing_is_streams_of_one_http2_connection(e, pki, relays):
    # Token auth on another origin (the realm gets its own connection,
    # outside the relay); the registry's TLS offers h2.
    reg = e.registry()
    digests = many_tags(reg)
    ts = TokenServer(pki)
    e.servers.append(ts)
    reg.stop()
    reg.auth_yaml, reg.tls = ts.auth_yaml(), (pki["server.pem"], pki["server.key"])
    assert reg.start()
    relay = relays(reg.port)
    # Credentials are looked up by host:port: the relay's.
    e.docker_config({"auths": {relay.host: {"auth": auth_b64()}}})
    p, mnt, _, log = run_foreground(e, relay.host, ["ttl=600", "ca_file=" + pki["ca.pem"]])
    check_listing(mnt, digests)
    text = stop_foreground(p, mnt, log)
    assert relay.accepted == 1, relay.accepted
    lines = request_lines(text, "/v2/%s/manifests/" % REPO)
    assert len(lines) >= N_TAGS, text[-3000:]
    assert all("HTTP/2" in l and "new connection" not in l for l in lines), lines[:5]
    # The token was asked for (the realm is another origin) and used.
    assert any(who == USER for _, _, who in ts.requests)


def test_plain_http_listing_uses_at_most_parallel_http1_connections(e, relays):
    reg = e.registry()
    digests = many_tags(reg)
    relay = relays(reg.port)
    p, mnt, _, log = run_foreground(e, relay.host, ["ttl=600", "plain_http", "parallel=4"])
    check_listing(mnt, digests)
    text = stop_foreground(p, mnt, log)
    assert 1 < relay.accepted <= 4, relay.accepted
    lines = request_lines(text, "/v2/%s/manifests/" % REPO)
    assert len(lines) >= N_TAGS
    assert all("HTTP/1.1" in l for l in lines), lines[:5]



class H1Terminator:
    """TLS in front of a plain-HTTP registry, offering only http/1.1 by
    ALPN (as a registry behind an HTTP/1.1 proxy would); counts the
    connections it accepts. asyncio in a thread of its own."""

    def __init__(self, port, pki):
        self.port, self.accepted = port, 0
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pki["server.pem"], pki["server.key"])
        ctx.set_alpn_protocols(["http/1.1"])
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def pump(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                w.close()

        async def handle(cr, cw):
            self.accepted += 1
            ur, uw = await asyncio.open_connection("127.0.0.1", self.port)
            await asyncio.gather(pump(cr, uw), pump(ur, cw), return_exceptions=True)

        async def serve():
            self.server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
            self.host = "127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]
            ready.set()

        self.thread = threading.Thread(
            target=lambda: (self.loop.run_until_complete(serve()), self.loop.run_forever()),
            daemon=True)
        self.thread.start()
        ready.wait(10)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_tls_without_http2_falls_back_to_http1_connections(e, pki):
    # ALPN offers only http/1.1: the requests that waited for the first
    # connection to say whether it multiplexes open their own, at most
    # -o parallel, and the listing is whole.
    reg = e.registry()
    digests = many_tags(reg)
    term = H1Terminator(reg.port, pki)
    try:
        p, mnt, _, log = run_foreground(e, term.host,
                                        ["ttl=600", "parallel=4", "ca_file=" + pki["ca.pem"]])
        check_listing(mnt, digests)
        text = stop_foreground(p, mnt, log)
    finally:
        term.close()
    assert 1 < term.accepted <= 4, term.accepted
    lines = request_lines(text, "/v2/%s/manifests/" % REPO)
    assert len(lines) >= N_TAGS
    assert all("HTTP/1.1" in l for l in lines), lines[:5]
