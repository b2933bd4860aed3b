"""front_asyncio.py: a Python asyncio front service for the e2e concurrency
tests, standard library only. GET /front/{id} calls WEFT_E2E_BACK
/items/{id}.1 and then /items/{id}.2 (two sequential awaits) over a pool
of keep-alive connections and answers 200 "ok" when both answered 200.
Prints its port alone on the first stdout line."""
import asyncio
import os
import re
import urllib.parse

BACK = urllib.parse.urlsplit(os.environ["WEFT_E2E_BACK"])
POOL = []  # idle (reader, writer) connections to the back service


async def get(path):
    if POOL:
        r, w = POOL.pop()
    else:
        r, w = await asyncio.open_connection(BACK.hostname, BACK.port)
    w.write(f"GET {path} HTTP/1.1\r\nHost: {BACK.netloc}\r\n\r\n".encode())
    await w.drain()
    status = int((await r.readline()).split()[1])
    length = 0
    while True:
        line = await r.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    await r.readexactly(length)
    POOL.append((r, w))
    return status


async def handle(r, w):
    try:
        while True:
            line = await r.readline()
            if not line:
                break
            while (await r.readline()) not in (b"\r\n", b""):
                pass
            m = re.match(r"GET /front/([^/? ]+)", line.decode())
            if not m:
                w.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                continue
            a = await get(f"/items/{m.group(1)}.1")
            b = await get(f"/items/{m.group(1)}.2")
            if a == 200 and b == 200:
                w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
            else:
                w.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            await w.drain()
    finally:
        w.close()


async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(srv.sockets[0].getsockname()[1], flush=True)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
