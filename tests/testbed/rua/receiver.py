#!/usr/bin/python3
"""receiver.py - the test bed's TLS report receiver (RFC 8460 5.4 https rua)

Listens with TLS (the good certificate of the test PKI, valid for
rua.reports.test) and takes POSTs.  Each request is saved as
DIR/NNNN.headers (request line and headers) and DIR/NNNN.body (the body as
received, still gzip), NNNN counting up from 0001.  The answer depends on
DIR/mode, read at every request:

  absent or "ok"   201 Created
  "500"            500, the request is still saved
  "stall"          read the request, then answer nothing until the client
                   gives up (the connection is held, at most 600 s)

Usage: receiver.py --dir DIR --pki PKI_DIR --ready FILE [--addr A] [--port P]
"""
import argparse
import http.server
import os
import ssl
import threading
import time

BODY_MAX = 16 << 20


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tlsrpt-receiver"

    def log_message(self, fmt, *args):
        print("%s %s" % (self.address_string(), fmt % args), flush=True)

    def mode(self):
        try:
            with open(os.path.join(self.server.dir, "mode")) as f:
                return f.read().strip()
        except OSError:
            return "ok"

    def save(self, body):
        with self.server.lock:
            self.server.n += 1
            n = self.server.n
        base = os.path.join(self.server.dir, "%04d" % n)
        with open(base + ".body.tmp", "wb") as f:
            f.write(body)
        with open(base + ".headers.tmp", "w") as f:
            f.write(self.requestline + "\n")
            for k, v in self.headers.items():
                f.write("%s: %s\n" % (k, v))
        os.rename(base + ".body.tmp", base + ".body")
        os.rename(base + ".headers.tmp", base + ".headers")

    def answer(self, code, text):
        data = (text + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if n < 0 or n > BODY_MAX:
            self.answer(413, "too large")
            return
        body = self.rfile.read(n)
        mode = self.mode()
        if mode == "stall":
            # keep the connection, say nothing
            time.sleep(600)
            return
        self.save(body)
        if mode == "500":
            self.answer(500, "failing on purpose")
        else:
            self.answer(201, "report taken")

    def do_GET(self):
        self.answer(405, "POST reports here")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--addr", default="127.10.1.6")
    ap.add_argument("--port", type=int, default=443)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(a.pki, "good-chain.crt"),
                        os.path.join(a.pki, "good.key"))
    srv = http.server.ThreadingHTTPServer((a.addr, a.port), Handler)
    srv.daemon_threads = True
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.dir = a.dir
    srv.lock = threading.Lock()
    srv.n = len([f for f in os.listdir(a.dir) if f.endswith(".body")])
    with open(a.ready, "w") as f:
        f.write("%d\n" % os.getpid())
    srv.serve_forever()


if __name__ == "__main__":
    main()
