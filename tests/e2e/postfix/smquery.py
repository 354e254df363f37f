#!/usr/bin/python3
# smquery.py - ask a socketmap server: smquery.py HOST:PORT|/unix/path NAME KEY...
# Prints "KEY<TAB>REPLY" per key; exit 1 on a protocol error.
import socket
import sys


def recv_ns(s, buf):
    while b":" not in buf:
        d = s.recv(4096)
        if not d:
            raise EOFError("connection closed")
        buf += d
    n, rest = buf.split(b":", 1)
    n = int(n)
    while len(rest) < n + 1:
        d = s.recv(4096)
        if not d:
            raise EOFError("connection closed")
        rest += d
    if rest[n:n + 1] != b",":
        raise ValueError("bad netstring")
    return rest[:n].decode(), rest[n + 1:]


def main():
    where, name, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
    if where.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(where)
    else:
        h, p = where.rsplit(":", 1)
        s = socket.create_connection((h, int(p)))
    s.settimeout(60)
    buf = b""
    for k in keys:
        q = ("%s %s" % (name, k)).encode()
        s.sendall(b"%d:%s," % (len(q), q))
        r, buf = recv_ns(s, buf)
        print("%s\t%s" % (k, r))


if __name__ == "__main__":
    try:
        main()
    except (OSError, EOFError, ValueError) as e:
        print("smquery: %s" % e, file=sys.stderr)
        sys.exit(1)
