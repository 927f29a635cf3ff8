"""A minimal keep-alive HTTP/1.1 server for client benchmarks (its own process).

It answers every request with a small fixed body, as fast as asyncio allows,
so the client's cost dominates. Loopback only; stops on SIGTERM.
"""

from __future__ import annotations

import asyncio
import sys

BODY = b'{"hello": "world"}'
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\n\r\n"
    + BODY
)


class _Handler(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._buffer = b""

    def data_received(self, data: bytes) -> None:
        # Requests are GETs without bodies: one response per blank line.
        self._buffer += data
        count = self._buffer.count(b"\r\n\r\n")
        if count:
            self._buffer = self._buffer[self._buffer.rindex(b"\r\n\r\n") + 4 :]
            self._transport.write(RESPONSE * count)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Handler, "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
