#!/usr/bin/python3
"""slowclients.py - hostile clients of danests-postfix next to a good one.

usage: slowclients.py HOST PORT NBAD SECONDS DOMAIN slow|idle

NBAD clients keep connections open for SECONDS (bounded): "slow" ones
send a socketmap request one byte a second and never finish it, and
reconnect when closed; "idle" ones connect and send nothing.  Meanwhile
a good client sends one request for DOMAIN every 0.5 s on a new
connection and waits up to 5 s for the whole answer.  Prints
"good SENT ANSWERED" and each answer that was not "OK ...".
"""
import selectors
import socket
import sys
import threading
import time

host, port, nbad, seconds, domain, mode = (sys.argv[1], int(sys.argv[2]),
                                          int(sys.argv[3]),
                                          float(sys.argv[4]), sys.argv[5],
                                          sys.argv[6])
end = time.monotonic() + seconds
stop = threading.Event()


def netstring(s):
    b = s.encode()
    return str(len(b)).encode() + b":" + b + b","


def bad_clients():
    sel = selectors.DefaultSelector()
    req = netstring("postfix " + "x" * 40 + ".example")
    socks = {}

    def open_one():
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex((host, port))
        except OSError:
            s.close()
            return
        socks[s] = 0
        sel.register(s, selectors.EVENT_READ)

    for _ in range(nbad):
        open_one()
    while not stop.is_set():
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                s.close()
                del socks[s]
                if mode == "slow":
                    open_one()
        if mode == "slow":
            for s in list(socks):
                i = socks[s]
                if i < len(req) - 1:   # never the final byte
                    try:
                        s.send(req[i:i + 1])
                        socks[s] = i + 1
                    except OSError:
                        pass
    for s in socks:
        s.close()


def ask():
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.settimeout(5)
        s.sendall(netstring("postfix " + domain))
        buf = b""
        while True:
            if b":" in buf:
                n, rest = buf.split(b":", 1)
                if len(rest) >= int(n) + 1:
                    return rest[:int(n)].decode()
            chunk = s.recv(4096)
            if not chunk:
                return None
            buf += chunk
    finally:
        s.close()


t = threading.Thread(target=bad_clients)
t.start()
time.sleep(2)                  # let the bad clients take their slots
sent = answered = 0
while time.monotonic() < end:
    sent += 1
    try:
        a = ask()
    except OSError as e:
        a = None
        print("error", e)
    if a is not None and a.startswith("OK "):
        answered += 1
    else:
        print("answer", a)
    time.sleep(0.5)
stop.set()
t.join()
print("good", sent, answered)
