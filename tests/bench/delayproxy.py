"""A TCP proxy that delays every byte by a fixed time each way: a far
registry on loopback (this kernel has no netem).

    delayproxy.py --upstream HOST:PORT --delay-ms D [--listen HOST:PORT]

prints "HOST:PORT" of its listening socket on stdout once it accepts, then
forwards until killed. It works at the TCP level, so TLS and HTTP/2 pass
through untouched. Bytes read at time t are written on at t + D (in order,
with no bandwidth limit), so a request and its answer cost one round trip of
2D; a new connection's first bytes leave no sooner than 3D after it was
accepted, as TCP's handshake costs a round trip before the client may send.

Stdlib only (asyncio), one process, no threads.
"""
import argparse
import asyncio
import sys

CHUNK = 64 * 1024


async def pump(reader, writer, delay, not_before):
    """Copy reader to writer, each chunk delay seconds after it was read
    (and not before not_before, a loop time), in order."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass

    task = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(CHUNK)
            due = max(loop.time() + delay, not_before)
            await queue.put((due, data or None))
            if not data:
                break
        await task
    except (OSError, asyncio.CancelledError):
        task.cancel()
    finally:
        try:
            writer.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--delay-ms", type=float, required=True, help="delay each way")
    ap.add_argument("--listen", default="127.0.0.1:0")
    a = ap.parse_args()
    up_host, up_port = a.upstream.rsplit(":", 1)
    host, port = a.listen.rsplit(":", 1)
    delay = a.delay_ms / 1000.0

    async def handle(creader, cwriter):
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        try:
            ureader, uwriter = await asyncio.open_connection(up_host, int(up_port))
        except OSError:
            cwriter.close()
            return
        await asyncio.gather(pump(creader, uwriter, delay, accepted + 3 * delay),
                             pump(ureader, cwriter, delay, 0.0),
                             return_exceptions=True)

    async def serve():
        server = await asyncio.start_server(handle, host, int(port), backlog=512)
        sock = server.sockets[0].getsockname()
        print("%s:%d" % (sock[0], sock[1]), flush=True)
        async with server:
            await server.serve_forever()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
