"""A small HTTP proxy put between chartfs and a real registry.

Why: distribution 2.8 never pages tag lists and chartfs asks the catalog for
n=1000, so Link pagination would go untested against the real registry. The
proxy answers GET /v2/_catalog and GET /v2/<name>/tags/list itself, in pages
of `page` entries built from the registry's full list, and forwards every
other request verbatim (method, path, headers including Host, body, streamed
both ways). It also counts requests, so tests can say "a cold chart read is
two requests", and can inject faults (status codes, stalls, cut bodies).

Stdlib only: http.server.ThreadingHTTPServer + http.client.
"""
import http.client
import http.server
import json
import re
import sys
import threading
import time
import urllib.parse

CHUNK = 64 * 1024
# GET /v2/<name>/referrers/<digest>: the OCI 1.1 referrers API.
REFERRERS = re.compile(r"^/v2/(.+)/referrers/(sha256:[0-9a-f]{64})$")
# Hop-by-hop headers are the proxy's own business (RFC 9110 7.6.1).
# Expect: the proxy's server side already answered "100 Continue".
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
              "te", "trailer", "upgrade", "expect"}


class _QuietServer(http.server.ThreadingHTTPServer):
    """A client that hangs up mid-answer (chartfs refusing an oversized body,
    a SIGKILLed daemon) is expected here, not a traceback."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class Fault:
    """One injected misbehaviour for requests whose path matches `pattern`.

    kind: "status" (answer `status` with an error body), "stall" (sleep
    `seconds` before forwarding, or after `after` body bytes when `after`
    is not None), "cut" (forward but close the connection after `after`
    bytes of the body), "flip" (forward with the body byte at offset
    `after` inverted; None: the middle one), "reply" (answer `status` with
    `body` and `headers`, never asking the registry), "extend" (forward
    without Content-Length, then `extra` zero bytes past the body; None:
    without end), "trickle" (forward the body at `rate` bytes a second).
    `times` is how many requests it hits (None: every one)."""

    def __init__(self, kind, pattern, times=1, method=None, status=500, headers=None,
                 seconds=0.0, after=0, body=b"", extra=None, rate=None):
        self.kind, self.pattern, self.times, self.method = kind, re.compile(pattern), times, method
        self.status, self.headers, self.seconds, self.after = status, headers or {}, seconds, after
        self.body, self.extra, self.rate = body, extra, rate
        self.hits = 0

    def take(self, method, path):
        """True (and one use spent) when this fault applies to the request."""
        if self.method and self.method != method:
            return False
        if not self.pattern.search(path):
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True


class RegistryProxy:
    """Forwarding proxy on 127.0.0.1:<free port> in front of `upstream`
    ("host:port"). page=K pages catalog and tag lists by K (None: forward
    them too). no_catalog=True answers the catalog like GHCR does.
    referrers=True answers the OCI 1.1 referrers API (GET
    /v2/<name>/referrers/<digest>[?artifactType=T]) from the referrers tag
    schema index (tag sha256-<hex>) the registry holds: Debian 12 packages
    no registry with that API, and distribution 2.8 answers it 404."""

    def __init__(self, upstream, page=None, no_catalog=False, referrers=False):
        self.upstream = upstream
        self.page = page
        self.no_catalog = no_catalog
        self.referrers = referrers
        self.lock = threading.Lock()
        self.log = []          # (method, path with query) of every request
        self.faults = []
        self.server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.host = "127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # --- what tests use -------------------------------------------------
    def count(self, prefix="", method=None):
        """Requests whose path (without query) starts with prefix."""
        with self.lock:
            return sum(1 for m, p in self.log
                       if p.split("?")[0].startswith(prefix) and (method is None or m == method))

    def requests(self):
        with self.lock:
            return list(self.log)

    def reset(self):
        with self.lock:
            self.log = []

    def fail(self, pattern, status=500, times=1, method=None, headers=None):
        """Answer the next `times` matching requests with `status`
        (e.g. 429 with headers={"Retry-After": "1"})."""
        self._add(Fault("status", pattern, times, method, status=status, headers=headers))

    def stall(self, pattern, seconds, times=1, method=None, after=None):
        """Sleep `seconds` before forwarding; with `after`, forward the
        headers and `after` body bytes first (a download in flight)."""
        self._add(Fault("stall", pattern, times, method, seconds=seconds, after=after))

    def cut(self, pattern, after=0, times=1, method=None):
        """Send headers and `after` body bytes, then drop the connection."""
        self._add(Fault("cut", pattern, times, method, after=after))

    def flip(self, pattern, offset=None, times=1, method=None):
        """Forward, with the body byte at `offset` (None: the middle one)
        inverted: same length, same headers (Docker-Content-Digest too)."""
        self._add(Fault("flip", pattern, times, method, after=offset))

    def extend(self, pattern, extra=None, times=1, method=None):
        """Forward, chunked (no Content-Length), and go on past the body
        with `extra` zero bytes (None: until the client hangs up): a body
        longer than its descriptor says."""
        self._add(Fault("extend", pattern, times, method, extra=extra))

    def trickle(self, pattern, rate, times=1, method=None):
        """Forward with the body sent at `rate` bytes a second (in tenths),
        the headers at once: a server just above a low-speed limit."""
        self._add(Fault("trickle", pattern, times, method, rate=rate))

    def reply(self, pattern, body, status=200, times=None, method=None, headers=None,
              content_type="application/json"):
        """Answer matching requests with `body` (bytes, or JSON-encoded if
        not), without asking the registry: e.g. a doctored tag list."""
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        h = dict(headers or {})
        h.setdefault("Content-Type", content_type)
        self._add(Fault("reply", pattern, times, method, status=status, headers=h, body=body))

    def clear_faults(self):
        with self.lock:
            self.faults = []

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # --- internals ------------------------------------------------------
    def _add(self, fault):
        with self.lock:
            self.faults.append(fault)

    def _take_fault(self, method, path):
        with self.lock:
            for f in self.faults:
                if f.take(method, path):
                    return f
        return None

    def _handler_class(self):
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as registries do

            def log_message(self, *args):
                pass

            def do_any(self):
                with proxy.lock:
                    proxy.log.append((self.command, self.path))
                proxy._serve(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_any

        return Handler

    def _serve(self, h):
        path = h.path.split("?")[0]
        fault = self._take_fault(h.command, h.path)
        if fault and fault.kind == "status":
            self._drain_request(h)
            return self._reply_error(h, fault.status, "INJECTED", "injected by the test proxy",
                                     fault.headers)
        if fault and fault.kind == "reply":
            self._drain_request(h)
            headers = dict(fault.headers)
            ctype = headers.pop("Content-Type")
            return self._reply(h, fault.status, fault.body, headers, content_type=ctype)
        if fault and fault.kind == "stall" and fault.after is None:
            time.sleep(fault.seconds)
        if self.no_catalog and path == "/v2/_catalog":
            self._drain_request(h)
            return self._reply_error(h, 404, "UNSUPPORTED", "catalog not supported")
        if self.page and h.command == "GET" and (path == "/v2/_catalog"
                                                 or path.endswith("/tags/list")):
            return self._paginate(h)
        if self.referrers and h.command == "GET" and REFERRERS.match(path):
            return self._referrers(h)
        self._forward(h, fault if fault and fault.kind in ("cut", "flip", "stall", "extend",
                                                           "trickle") else None)

    @staticmethod
    def _reply(h, status, body, headers=None, content_type="application/json"):
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(body)

    def _reply_error(self, h, status, code, message, headers=None):
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        self._reply(h, status, body, headers)

    @staticmethod
    def _request_body(h):
        """Yield the client's request body in chunks (Content-Length or chunked)."""
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                yield h.rfile.read(size)
                h.rfile.readline()
        left = int(h.headers.get("Content-Length") or 0)
        while left > 0:
            data = h.rfile.read(min(CHUNK, left))
            if not data:
                return
            left -= len(data)
            yield data

    def _drain_request(self, h):
        for _ in self._request_body(h):
            pass

    def _upstream_list(self, path, key):
        """The registry's whole list for a catalog or tags/list path, following
        its own Link pages. Returns (status, body-or-list)."""
        items, url = [], path + ("?n=1000" if path == "/v2/_catalog" else "")
        while url:
            conn = http.client.HTTPConnection(self.upstream, timeout=30)
            try:
                conn.request("GET", url)
                r = conn.getresponse()
                body = r.read()
                link = r.getheader("Link")
            finally:
                conn.close()
            if r.status != 200:
                return r.status, body
            items += json.loads(body).get(key) or []
            m = re.match(r'\s*<([^>]*)>\s*;\s*rel="?next"?', link or "")
            url = urllib.parse.urljoin(url, m.group(1)) if m else None
        return 200, items

    def _paginate(self, h):
        self._drain_request(h)
        u = urllib.parse.urlsplit(h.path)
        q = urllib.parse.parse_qs(u.query)
        key = "repositories" if u.path == "/v2/_catalog" else "tags"
        status, items = self._upstream_list(u.path, key)
        if status != 200:
            return self._reply(h, status, items)
        items = sorted(items)
        last = q.get("last", [None])[0]
        if last is not None:
            items = [i for i in items if i > last]
        n = self.page
        if "n" in q:
            n = min(n, int(q["n"][0]))
        page, more = items[:n], len(items) > n
        doc = {key: page}
        if key == "tags":
            doc = {"name": u.path[len("/v2/"):-len("/tags/list")], "tags": page}
        headers = {}
        if more:
            # Relative, as distribution writes it: the client resolves it
            # against the request URL.
            headers["Link"] = '<%s?%s>; rel="next"' % (
                u.path, urllib.parse.urlencode({"n": n, "last": page[-1]}))
        self._reply(h, 200, json.dumps(doc).encode(), headers)

    def _referrers(self, h):
        """The referrers API over the tag schema: the index the registry
        keeps under sha256-<hex> (an empty one if none), filtered by
        artifactType as the spec says (OCI-Filters-Applied)."""
        self._drain_request(h)
        u = urllib.parse.urlsplit(h.path)
        name, digest = REFERRERS.match(u.path).groups()
        want = urllib.parse.parse_qs(u.query).get("artifactType", [None])[0]
        conn = http.client.HTTPConnection(self.upstream, timeout=30)
        try:
            conn.request("GET", "/v2/%s/manifests/sha256-%s" % (name, digest[7:]),
                         headers={"Accept": "application/vnd.oci.image.index.v1+json"})
            r = conn.getresponse()
            body = r.read()
        finally:
            conn.close()
        manifests = json.loads(body).get("manifests") or [] if r.status == 200 else []
        headers = {}
        if want is not None:
            manifests = [d for d in manifests if d.get("artifactType") == want]
            headers["OCI-Filters-Applied"] = "artifactType"
        doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": manifests}
        self._reply(h, 200, json.dumps(doc).encode(), headers,
                    content_type="application/vnd.oci.image.index.v1+json")

    def _forward(self, h, fault=None):
        conn = http.client.HTTPConnection(self.upstream, timeout=120)
        try:
            conn.putrequest(h.command, h.path, skip_host=True, skip_accept_encoding=True)
            chunked_in = h.headers.get("Transfer-Encoding", "").lower() == "chunked"
            for k, v in h.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    conn.putheader(k, v)  # Host too: the registry builds Locations from it
            if chunked_in:
                conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            for data in self._request_body(h):
                conn.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked_in else data)
            if chunked_in:
                conn.send(b"0\r\n\r\n")
            r = conn.getresponse()
            self._relay(h, r, fault)
        finally:
            conn.close()

    def _relay(self, h, r, fault=None):
        kind = fault.kind if fault else None
        cut_after = fault.after if kind == "cut" else None
        stall_after = fault.after if kind == "stall" else None
        h.send_response_only(r.status, r.reason)
        length = r.getheader("Content-Length")
        flip_at = None
        if kind == "flip":
            flip_at = fault.after
            if flip_at is None:
                flip_at = int(length) // 2 if length else 0
        has_body = h.command != "HEAD" and r.status not in (204, 304) and r.status >= 200
        extend = kind == "extend" and has_body
        if extend:
            length = None
        for k, v in r.getheaders():
            if k.lower() in HOP_BY_HOP or (extend and k.lower() == "content-length"):
                continue
            if k.lower() == "location":
                # In case the registry was configured with its own host name.
                v = v.replace("//" + self.upstream + "/", "//" + self.host + "/")
            h.send_header(k, v)
        chunked_out = has_body and length is None
        if chunked_out:
            h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        if not has_body:
            return
        sent = 0
        while True:
            data = r.read(CHUNK)
            if not data:
                break
            if cut_after is not None and sent + len(data) > cut_after:
                h.wfile.write(data[:cut_after - sent])
                h.wfile.flush()
                h.close_connection = True
                return
            if flip_at is not None and sent <= flip_at < sent + len(data):
                i = flip_at - sent
                data = data[:i] + bytes([data[i] ^ 0xff]) + data[i + 1:]
            if stall_after is not None and sent + len(data) > stall_after:
                head, data = data[:stall_after - sent], data[stall_after - sent:]
                if head:
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(head), head) if chunked_out else head)
                    sent += len(head)
                h.wfile.flush()
                time.sleep(fault.seconds)
                stall_after = None
            if kind == "trickle":
                self._trickle(h, data, fault.rate, chunked_out)
            else:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked_out else data)
            sent += len(data)
        if extend:
            self._zeros(h, fault.extra)
        if chunked_out:
            h.wfile.write(b"0\r\n\r\n")

    @staticmethod
    def _trickle(h, data, rate, chunked):
        step = max(1, rate // 10)
        for i in range(0, len(data), step):
            piece = data[i:i + step]
            h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            h.wfile.flush()
            time.sleep(0.1)

    @staticmethod
    def _zeros(h, extra):
        """`extra` zero bytes (None: until the client hangs up), chunked."""
        zeros = bytes(CHUNK)
        while extra is None or extra > 0:
            n = CHUNK if extra is None else min(CHUNK, extra)
            h.wfile.write(b"%x\r\n%s\r\n" % (n, zeros[:n]))
            if extra is not None:
                extra -= n
