#!/usr/bin/python3
"""smburst.py - every domain of a file asked once of a socketmap server
over CLIENTS connections at once; prints the time and the replies by type.

    smburst.py HOST:PORT MAPNAME CLIENTS DOMAINFILE
"""
import asyncio
import sys
import time


async def ask(reader, writer, mapname, domain):
    q = f"{mapname} {domain}".encode()
    writer.write(b"%d:%s," % (len(q), q))
    await writer.drain()
    n = int((await reader.readuntil(b":"))[:-1])
    body = await reader.readexactly(n + 1)
    return body[:-1].decode(errors="replace").split(" ", 1)[0]


async def worker(addr, mapname, queue, counts):
    host, port = addr.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    while True:
        try:
            d = queue.get_nowait()
        except asyncio.QueueEmpty:
            break
        try:
            kind = await asyncio.wait_for(ask(reader, writer, mapname, d), 30)
        except Exception:
            kind = "error"
        counts[kind] = counts.get(kind, 0) + 1
    writer.close()


async def main():
    addr, mapname, clients, path = sys.argv[1:5]
    queue = asyncio.Queue()
    with open(path) as f:
        for line in f:
            if line.strip():
                queue.put_nowait(line.strip())
    n = queue.qsize()
    counts = {}
    t0 = time.monotonic()
    await asyncio.gather(*(worker(addr, mapname, queue, counts)
                           for _ in range(int(clients))))
    t = time.monotonic() - t0
    print("clients=%s domains=%d seconds=%.3f replies=%s" % (
        clients, n, t, ",".join("%s:%d" % kv for kv in sorted(counts.items()))))


asyncio.run(main())
