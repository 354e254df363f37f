#!/usr/bin/python3
# tests/testbed/smtp/receiver.py - the SMTP receivers of the loopback test bed
#
#   receiver.py --mail-dir DIR --pki DIR [--port 25] [--ready FILE]
#
# One process, three real SMTP servers (aiosmtpd):
#   127.10.2.1  STARTTLS with the "good" certificate (test CA, all MX names)
#   127.10.2.2  STARTTLS with the "bad" self-signed certificate (MITM stand-in)
#   127.10.2.3  no STARTTLS
# Every accepted message is stored once per recipient domain as
#   DIR/<receiver>/<rcpt-domain>/<n>.eml
# with X-Danests-* headers prepended that record the receiver, whether TLS
# was used, and the TLS version and cipher, so e2e tests can tell "delivered
# over TLS to the good receiver" from anything else.  Messages are capped at
# 1 MiB (RFC 1870 SIZE); the file is written under a temporary name and
# renamed, so a reader never sees half a message.
import argparse
import asyncio
import os
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP

RECEIVERS = [
    ("good", "127.10.2.1", "good"),
    ("bad", "127.10.2.2", "bad"),
    ("plain", "127.10.2.3", None),
]
MAX_SIZE = 1024 * 1024


class Store:
    """handler - write each message per recipient domain"""

    def __init__(self, name, mail_dir):
        self.name = name
        self.mail_dir = mail_dir
        self.seq = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        if "@" not in address:
            return "550 5.1.3 bad recipient address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = session.ssl is not None
        version = cipher = "none"
        if tls:
            obj = session.ssl.get("ssl_object")
            if obj is not None:
                version = obj.version() or "unknown"
                c = obj.cipher()
                cipher = c[0] if c else "unknown"
        hdr = ("X-Danests-Receiver: %s\r\n"
               "X-Danests-TLS: %s\r\n"
               "X-Danests-TLS-Version: %s\r\n"
               "X-Danests-TLS-Cipher: %s\r\n"
               "X-Danests-Mail-From: <%s>\r\n"
               "X-Danests-Rcpt-To: %s\r\n") % (
            self.name, "yes" if tls else "no", version, cipher,
            envelope.mail_from, ", ".join("<%s>" % r for r in envelope.rcpt_tos))
        body = envelope.original_content or envelope.content
        if isinstance(body, str):
            body = body.encode("utf-8", "replace")
        domains = sorted({r.rsplit("@", 1)[1].lower().rstrip(".")
                          for r in envelope.rcpt_tos})
        for d in domains:
            if "/" in d or d.startswith("."):
                continue
            ddir = os.path.join(self.mail_dir, self.name, d)
            os.makedirs(ddir, exist_ok=True)
            self.seq += 1
            n = len(os.listdir(ddir)) + 1
            path = os.path.join(ddir, "%d.eml" % n)
            while os.path.exists(path):
                n += 1
                path = os.path.join(ddir, "%d.eml" % n)
            tmp = os.path.join(ddir, ".tmp.%d.%d" % (os.getpid(), self.seq))
            with open(tmp, "wb") as f:
                f.write(hdr.encode("ascii"))
                f.write(body)
            os.rename(tmp, path)
        return "250 2.0.0 Message accepted for delivery"


def tls_context(pki, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    crt = os.path.join(pki, key + "-chain.crt")
    if not os.path.exists(crt):
        crt = os.path.join(pki, key + ".crt")
    ctx.load_cert_chain(crt, os.path.join(pki, key + ".key"))
    return ctx


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mail-dir", required=True)
    ap.add_argument("--pki", required=True)
    ap.add_argument("--port", type=int, default=25)
    ap.add_argument("--ready")
    a = ap.parse_args()
    loop = asyncio.get_running_loop()
    servers = []
    for name, addr, key in RECEIVERS:
        ctx = tls_context(a.pki, key) if key else None
        h = Store(name, a.mail_dir)

        def factory(h=h, ctx=ctx):
            return SMTP(h, hostname="%s.receiver.test" % h.name,
                        tls_context=ctx, require_starttls=False,
                        data_size_limit=MAX_SIZE, timeout=60,
                        ident="danests test receiver")
        servers.append(await loop.create_server(factory, addr, a.port))
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    if a.ready:
        with open(a.ready, "w") as f:
            f.write("%d\n" % os.getpid())
    await stop.wait()
    for s in servers:
        s.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except OSError as e:
        print("receiver.py: %s" % e, file=sys.stderr)
        sys.exit(1)
