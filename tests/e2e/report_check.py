#!/usr/bin/python3
"""report_check.py - the TLS reports (RFC 8460) one e2e suite's
`danests report send` delivered, field by field

  report_check.py --rua DIR --mail DIR --day YYYY-MM-DD --submitter NAME
      --from ADDR --org TEXT --contact TEXT [--mta-prefix TEXT] < EXPECT

EXPECT holds one line per domain whose report must have been sent:

  DOMAIN POLICY-TYPE SUCCESSFUL FAILED [RESULT-TYPE=COUNT...]

--rua is the test bed's https receiver directory (NNNN.headers and
NNNN.body), --mail the test bed's mail directory (RECEIVER/DOMAIN/N.eml).
Only the mail whose TLS-Report-Submitter is --submitter counts (suites may
share the mailbox); every POST in --rua counts (the suite reset it).
Checked:
  - exactly one POST and one mail per expected domain, no other domain;
  - the POST: "POST /tlsrpt", Content-Type application/tlsrpt+gzip;
  - the mail (RFC 8460 5.3, RFC 6522, RFC 8689): reached the good receiver
    over TLS, envelope --from to tlsrpt@reports.test; multipart/report;
    report-type="tlsrpt"; TLS-Required: No; TLS-Report-Domain,
    TLS-Report-Submitter, From, To, Subject with the Report-ID; a
    text/plain part and an application/tlsrpt+gzip attachment named
    SUBMITTER!DOMAIN!BEGIN!END.json.gz (BEGIN/END: the day in epoch
    seconds), whose JSON equals the POSTed one byte for byte;
  - the JSON (RFC 8460 4.4): organization-name, contact-info, date-range
    of the day, report-id, one policy of the expected type and domain, a
    policy-string for tlsa and sts, the summary counts, the failure
    details per result type (each naming the receiving MX host) adding
    up to the failure count.
Prints "ok DOMAIN ..." per domain; exits 1 with the reason on the first
difference.
"""
import argparse
import calendar
import email
import email.policy
import glob
import gzip
import json
import os
import re
import sys
import time


def fail(why):
    print("report_check: %s" % why)
    sys.exit(1)


def need(cond, why):
    if not cond:
        fail(why)


def main():
    ap = argparse.ArgumentParser()
    for a in ("--rua", "--mail", "--day", "--submitter", "--from", "--org",
              "--contact"):
        ap.add_argument(a, required=True)
    o = ap.parse_args()

    expect = {}
    for line in sys.stdin:
        f = line.split()
        if not f or f[0].startswith("#"):
            continue
        rt = {}
        for x in f[4:]:
            k, v = x.split("=")
            rt[k] = int(v)
        expect[f[0]] = (f[1], int(f[2]), int(f[3]), rt)
    need(expect, "no expectations given")

    begin = calendar.timegm(time.strptime(o.day, "%Y-%m-%d"))
    end = begin + 86399

    # the POSTs
    posted = {}
    for b in sorted(glob.glob(os.path.join(o.rua, "*.body"))):
        hdr = open(b[:-5] + ".headers").read().lower()
        need(hdr.startswith("post /tlsrpt "), "%s: %r" % (b, hdr[:80]))
        need("content-type: application/tlsrpt+gzip\n" in hdr,
             "%s: content type: %r" % (b, hdr))
        raw = gzip.decompress(open(b, "rb").read())
        d = json.loads(raw)["policies"][0]["policy"]["policy-domain"]
        need(d not in posted, "two POSTs for %s" % d)
        posted[d] = raw
    need(sorted(posted) == sorted(expect),
         "POSTed for %s, want %s" % (sorted(posted), sorted(expect)))

    # the mails of this submitter
    mailed = {}
    for f in sorted(glob.glob(os.path.join(o.mail, "*", "reports.test",
                                           "*.eml"))):
        m = email.message_from_bytes(open(f, "rb").read(),
                                     policy=email.policy.default)
        if m["TLS-Report-Submitter"] != o.submitter:
            continue
        d = str(m["TLS-Report-Domain"])
        need(d not in mailed, "two mails for %s: %s, %s" % (d, mailed.get(d, ("",))[0], f))
        mailed[d] = (f, m)
    need(sorted(mailed) == sorted(expect),
         "mailed for %s, want %s" % (sorted(mailed), sorted(expect)))

    for d, (ptype, nok, nfail, rts) in sorted(expect.items()):
        f, m = mailed[d]
        where = "%s (%s)" % (d, f)
        rid = "%s.%s@%s" % (o.day, d, o.submitter)
        # delivered by the MTA to the good receiver over TLS (DANE)
        need(m["X-Danests-Receiver"] == "good", "%s: receiver %s" % (where, m["X-Danests-Receiver"]))
        need(m["X-Danests-TLS"] == "yes", "%s: not over TLS" % where)
        need(m["X-Danests-Mail-From"] == "<%s>" % getattr(o, "from"),
             "%s: envelope from %s" % (where, m["X-Danests-Mail-From"]))
        need(m["X-Danests-Rcpt-To"] == "<tlsrpt@reports.test>",
             "%s: envelope to %s" % (where, m["X-Danests-Rcpt-To"]))
        # RFC 8460 5.3, RFC 8689
        need(m["TLS-Required"] == "No", "%s: TLS-Required %r" % (where, m["TLS-Required"]))
        need(m["TLS-Report-Domain"] == d, where)
        need(m["From"] == getattr(o, "from"), "%s: From %s" % (where, m["From"]))
        need(m["To"] == "tlsrpt@reports.test", "%s: To %s" % (where, m["To"]))
        need(m["MIME-Version"] == "1.0", "%s: MIME-Version" % where)
        need(m["Date"] is not None and m["Message-ID"] is not None,
             "%s: no Date or Message-ID" % where)
        subj = " ".join(str(m["Subject"]).split())
        want = "Report Domain: %s Submitter: %s Report-ID: <%s>" % (d, o.submitter, rid)
        need(subj == want, "%s: Subject %r, want %r" % (where, subj, want))
        need(m.get_content_type() == "multipart/report",
             "%s: %s" % (where, m.get_content_type()))
        need(m.get_param("report-type") == "tlsrpt",
             "%s: report-type %r" % (where, m.get_param("report-type")))
        parts = list(m.iter_parts())
        need(len(parts) == 2, "%s: %d parts" % (where, len(parts)))
        need(parts[0].get_content_type() == "text/plain", where)
        a = parts[1]
        need(a.get_content_type() == "application/tlsrpt+gzip",
             "%s: %s" % (where, a.get_content_type()))
        need(a.get_content_disposition() == "attachment", where)
        fn = a.get_filename()
        need(fn == "%s!%s!%d!%d.json.gz" % (o.submitter, d, begin, end),
             "%s: attachment name %r" % (where, fn))
        raw = gzip.decompress(a.get_content())
        need(raw == posted[d], "%s: the mailed JSON differs from the POSTed" % where)

        # RFC 8460 4.4
        r = json.loads(raw)
        need(r["organization-name"] == o.org, "%s: %r" % (where, r.get("organization-name")))
        need(r["contact-info"] == o.contact, "%s: %r" % (where, r.get("contact-info")))
        need(r["date-range"] == {"start-datetime": o.day + "T00:00:00Z",
                                 "end-datetime": o.day + "T23:59:59Z"},
             "%s: %r" % (where, r["date-range"]))
        need(r["report-id"] == rid, "%s: report-id %r" % (where, r["report-id"]))
        need(len(r["policies"]) == 1, "%s: %d policies" % (where, len(r["policies"])))
        p = r["policies"][0]
        pol = p["policy"]
        need(pol["policy-type"] == ptype, "%s: policy-type %r, want %r" % (where, pol["policy-type"], ptype))
        need(pol["policy-domain"] == d, where)
        if ptype in ("tlsa", "sts"):
            ps = pol.get("policy-string")
            need(isinstance(ps, list) and ps and all(isinstance(x, str) and x for x in ps),
                 "%s: policy-string %r" % (where, ps))
        if ptype == "sts":
            need("version: STSv1" in pol["policy-string"], "%s: %r" % (where, pol["policy-string"]))
            need(pol.get("mx-host"), "%s: no mx-host" % where)
        s = p["summary"]
        got = (s["total-successful-session-count"], s["total-failure-session-count"])
        need(got == (nok, nfail), "%s: summary %d successful %d failed, want %d %d"
             % ((where,) + got + (nok, nfail)))
        byrt = {}
        for fd in p.get("failure-details", []):
            need(fd.get("receiving-mx-hostname"), "%s: detail without MX: %r" % (where, fd))
            need(fd["failed-session-count"] > 0, "%s: %r" % (where, fd))
            byrt[fd["result-type"]] = byrt.get(fd["result-type"], 0) + fd["failed-session-count"]
        need(byrt == rts, "%s: failure details %r, want %r" % (where, byrt, rts))
        need(sum(byrt.values()) == nfail, "%s: details add up to %d, not %d"
             % (where, sum(byrt.values()), nfail))
        print("ok %s %s %d %d%s" % (d, ptype, nok, nfail,
                                    "".join(" %s=%d" % x for x in sorted(rts.items()))))


if __name__ == "__main__":
    main()
