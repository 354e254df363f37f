#!/usr/bin/python3
"""smfleet.py - several socketmap servers (the nodes of a fleet) asked
about the same domains at the same moment.

    smfleet.py PORTS MAPNAME CLIENTS DEADLINE DOMAINFILE

PORTS: comma-separated ports on 127.0.0.1.  Each server gets CLIENTS
connections (at most 1000) that take the domains of DOMAINFILE in the
file's order, one request at a time per connection (as Postfix reuses a
connection), so every server is asked about the same domain at about the
same moment.  Each reply waits at most 30 s; the whole run at most
DEADLINE seconds, after which what is left unanswered is "ERROR deadline".
Prints "PORT DOMAIN REPLY" per request, then "# seconds=S" (the time from
the first request to the last reply).  Exit status 0, or 2 on bad
arguments.
"""
import asyncio
import sys
import time


async def ask(reader, writer, mapname, domain):
    q = f"{mapname} {domain}".encode()
    writer.write(b"%d:%s," % (len(q), q))
    await writer.drain()
    n = int((await reader.readuntil(b":"))[:-1])
    if n > 100000:
        raise ValueError("reply too long")
    body = await reader.readexactly(n + 1)
    if body[-1:] != b",":
        raise ValueError("bad netstring")
    return body[:-1].decode(errors="replace")


async def worker(port, mapname, domains, next_i, out):
    reader = writer = None
    while next_i[0] < len(domains):
        d = domains[next_i[0]]
        next_i[0] += 1
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 30)
            r = await asyncio.wait_for(ask(reader, writer, mapname, d), 30)
        except Exception as e:      # a reply lost: the connection too
            r = "ERROR " + (str(e) or type(e).__name__)
            if writer is not None:
                writer.close()
            writer = None
        out[(port, d)] = r
    if writer is not None:
        writer.close()


async def main():
    if len(sys.argv) != 6:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    ports = [int(p) for p in sys.argv[1].split(",")]
    mapname = sys.argv[2]
    clients = min(int(sys.argv[3]), 1000)
    deadline = float(sys.argv[4])
    with open(sys.argv[5]) as f:
        domains = [l.strip() for l in f if l.strip()]
    out = {}
    tasks = []
    t0 = time.monotonic()
    for p in ports:
        next_i = [0]        # one queue per server, in the file's order
        tasks += [asyncio.ensure_future(worker(p, mapname, domains,
                                               next_i, out))
                  for _ in range(clients)]
    _, late = await asyncio.wait(tasks, timeout=deadline)
    for t in late:
        t.cancel()
    t = time.monotonic() - t0
    for p in ports:
        for d in domains:
            print(p, d, out.get((p, d), "ERROR deadline"))
    print("# seconds=%.3f" % t)


asyncio.run(main())
