#!/usr/bin/python3
"""Driver of the "idle" benchmark part (see idle.sh).

Opens many TCP connections from 127.0.0.1 to an SMTP server at once, reads
each one's banner, holds the connections that got one for a while without
saying anything, and samples the server's memory meanwhile; then says QUIT
and closes them all. gosendmail's daemon first, then (unless --only says
otherwise) Postfix's smtpd for comparison.

Every connection ends in one of: a 220 banner; another reply (421 when the
server refuses it); closed or reset by the server before any banner; or
nothing within the timeout (still connecting, or connected with no banner:
Postfix queues what its smtpd processes cannot take).

Standard library only. Exit status: 0 all targets met, 3 a target missed,
2 the setup is wrong.
"""

import argparse
import errno
import resource
import selectors
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
import bench_common as bc  # noqa: E402  (after the line above)

MEMORY_LIMIT_KIB = 200 * 1024  # "under 200 MB", in the project's units


class Setup(Exception):
    pass


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        new_hard = hard if hard == resource.RLIM_INFINITY or hard >= want else want
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, new_hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def one_more(port):
    """The first reply line to one more connection, or what went wrong."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
            buf = b""
            while b"\n" not in buf:
                data = s.recv(4096)
                if not data:
                    return "closed without a reply" if not buf else buf.decode("ascii", "replace")
                buf += data
            return buf.split(b"\n", 1)[0].decode("ascii", "replace").rstrip("\r")
    except OSError as e:
        return f"error: {e}"


def hold(port, n, timeout, hold_s, sample, interval=0.25, probe_limit=False):
    """Open N connections to 127.0.0.1:PORT, wait up to TIMEOUT seconds for
    their banners, hold them HOLD_S seconds calling SAMPLE() every INTERVAL,
    then close them. With PROBE_LIMIT, once all N have their banner, one
    more connection is tried, which a server whose max_connections is N
    must refuse. Returns the counts, timings and samples."""
    sel = selectors.DefaultSelector()
    conns = {}  # socket -> bytes read so far
    res = {"banner_220": 0, "other_reply": 0, "closed_before_banner": 0, "refused_or_reset": 0,
           "connect_error": 0, "connected_no_banner": 0, "still_connecting": 0,
           "other_replies": {}, "errors": {}}
    held = []
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            res["connect_error"] += 1
            name = errno.errorcode.get(err, str(err))
            res["errors"][name] = res["errors"].get(name, 0) + 1
            s.close()
            continue
        conns[s] = b""
        sel.register(s, selectors.EVENT_READ)
    t_connects = time.monotonic() - t0
    last_banner = None
    deadline = t0 + timeout
    while conns and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, min(0.5, deadline - time.monotonic()))):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError as e:
                sel.unregister(s)
                del conns[s]
                s.close()
                res["refused_or_reset"] += 1
                name = errno.errorcode.get(e.errno, str(e.errno))
                res["errors"][name] = res["errors"].get(name, 0) + 1
                continue
            if not data:
                sel.unregister(s)
                del conns[s]
                s.close()
                res["closed_before_banner"] += 1
                continue
            buf = conns[s] + data
            if b"\n" not in buf:
                conns[s] = buf
                continue
            sel.unregister(s)
            del conns[s]
            first = buf.split(b"\n", 1)[0].decode("ascii", "replace").rstrip("\r")
            if first.startswith("220"):
                res["banner_220"] += 1
                last_banner = time.monotonic() - t0
                held.append(s)
            else:
                res["other_reply"] += 1
                res["other_replies"][first] = res["other_replies"].get(first, 0) + 1
                s.close()
    # What is left got no banner in time: connected (the server queued it)
    # or still waiting for the handshake.
    for s in list(conns):
        sel.unregister(s)
        try:
            s.getpeername()
            res["connected_no_banner"] += 1
        except OSError:
            res["still_connecting"] += 1
        held.append(s)
    res["seconds_to_issue_connects"] = t_connects
    res["seconds_to_last_banner"] = last_banner
    res["banner_wait_seconds"] = time.monotonic() - t0
    res["one_more_reply"] = one_more(port) if probe_limit and res["banner_220"] == n else None

    # Hold, saying nothing, and sample the server's memory.
    samples = []
    end = time.monotonic() + hold_s
    while True:
        samples.append(sample())
        left = end - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(interval, left))

    # Did the server drop any of the connections that had a banner?
    dropped = 0
    banner_socks = held[:res["banner_220"]]
    for s in banner_socks:
        sel.register(s, selectors.EVENT_READ)
    for key, _ in sel.select(timeout=0):
        try:
            if not key.fileobj.recv(4096):
                dropped += 1
        except OSError:
            dropped += 1
    res["dropped_during_hold"] = dropped
    for s in banner_socks:
        try:
            s.send(b"QUIT\r\n")
        except OSError:
            pass
    for s in held:
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()
    sel.close()
    res["samples"] = samples
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gosendmail-port", type=int, required=True)
    ap.add_argument("--gosendmail-pid", type=int, required=True)
    ap.add_argument("--gosendmail-log", required=True)
    ap.add_argument("--max-connections", type=int, required=True,
                    help="gosendmail's configured max_connections")
    ap.add_argument("--postfix-port", type=int, required=True)
    ap.add_argument("--postfix-spool", required=True)
    ap.add_argument("--postfix-log", required=True)
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--hold", type=float, default=5.0)
    ap.add_argument("--timeout", type=float, default=10.0,
                    help="seconds to wait for the banners")
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--meta", action="append", default=[])
    ap.add_argument("--only", choices=("gosendmail", "postfix"))
    args = ap.parse_args()
    n = args.connections
    nofile = raise_nofile(n)

    load_before = bc.loadavg()
    g = p = None
    if args.only in (None, "gosendmail"):
        pid = args.gosendmail_pid
        if not bc.alive(pid):
            print("bench: error: gosendmail's daemon is not running", file=sys.stderr)
            return 2
        idle_rss = bc.status_kib(pid, "VmRSS")

        def gs_sample():
            return {"t": time.monotonic(), "vm_rss_kib": bc.status_kib(pid, "VmRSS"),
                    **bc.memory_of([pid])}

        g = hold(args.gosendmail_port, n, args.timeout, args.hold, gs_sample,
                 probe_limit=(n == args.max_connections))
        g["alive_after"] = bc.alive(pid)
        g["idle_vm_rss_kib"] = idle_rss
        rss = [s["vm_rss_kib"] for s in g["samples"] if s["vm_rss_kib"] is not None]
        g["memory_hold_kib"] = max(rss) if rss else None
        g["vm_hwm_kib_after"] = bc.status_kib(pid, "VmHWM")
        print(f"  gosendmail: {g['banner_220']} of {n} banners", file=sys.stderr)
        time.sleep(1)  # let the sessions end before the next server is measured
        # The daemon's own word about what it refused or dropped.
        lines = bc.read_lines(args.gosendmail_log)
        g["log_refusals"] = [line for line in lines if "reject=421" in line][:20]
        expected = ("listener MTA on ", "starting daemon", "stopping daemon", "daemon stopped",
                    "user is root", "did not issue MAIL/EXPN/VRFY/ETRN", "reject=421")
        g["log_other_lines"] = [line for line in lines
                                if not any(e in line for e in expected)][:50]
    if args.only in (None, "postfix"):
        spool = args.postfix_spool
        idle_mem = bc.memory_of(bc.pids_in(spool))

        def pf_sample():
            return {"t": time.monotonic(), **bc.memory_of(bc.pids_in(spool))}

        p = hold(args.postfix_port, n, args.timeout, args.hold, pf_sample)
        p["idle_pss_kib"] = idle_mem["pss_kib"]
        pss = [s["pss_kib"] for s in p["samples"]]
        p["memory_hold_kib"] = max(pss)
        p["processes_hold"] = max(s["processes"] for s in p["samples"])
        p["rss_sum_hold_kib"] = max(s["rss_kib"] for s in p["samples"])
        p["log_problems"] = bc.postfix_problems(args.postfix_log)[:20]
        print(f"  Postfix: {p['banner_220']} of {n} banners", file=sys.stderr)
    load_after = bc.loadavg()

    all_ok = None if g is None else (g["banner_220"] == n and g["alive_after"])
    mem_ok = None if g is None or g["memory_hold_kib"] is None else g["memory_hold_kib"] < MEMORY_LIMIT_KIB

    def col(s, f):
        return "-" if s is None else f(s)

    def refused(s):
        return (s["other_reply"] + s["closed_before_banner"] + s["refused_or_reset"]
                + s["connect_error"])

    def per_conn(s, idle):
        if not s["banner_220"] or s["memory_hold_kib"] is None or idle is None:
            return "-"
        return f"{(s['memory_hold_kib'] - idle) / s['banner_220']:.1f} KiB"

    rows = [
        (f"connections answered 220, of {n}", col(g, lambda s: str(s["banner_220"])),
         col(p, lambda s: str(s["banner_220"])), "-", f"gosendmail: all {n}",
         bc.verdict(all_ok)),
        ("refused: 421, reset or closed", col(g, lambda s: str(refused(s))),
         col(p, lambda s: str(refused(s))), "-", "-", "info"),
        (f"no banner within {args.timeout:g} s", col(g, lambda s: str(
            s["connected_no_banner"] + s["still_connecting"])),
         col(p, lambda s: str(s["connected_no_banner"] + s["still_connecting"])), "-", "-", "info"),
        ("time until the last banner", col(g, lambda s: "-" if s["seconds_to_last_banner"] is None
                                           else f"{s['seconds_to_last_banner']:.2f} s"),
         col(p, lambda s: "-" if s["seconds_to_last_banner"] is None
             else f"{s['seconds_to_last_banner']:.2f} s"), "-", "-", "info"),
        ("memory while holding (gs: VmRSS; Postfix: sum of PSS)",
         col(g, lambda s: bc.fmt_kib(s["memory_hold_kib"])),
         col(p, lambda s: f"{bc.fmt_kib(s['memory_hold_kib'])} ({s['processes_hold']} processes)"),
         "-", f"gosendmail < {MEMORY_LIMIT_KIB // 1024} MiB", bc.verdict(mem_ok)),
        ("peak RSS of gosendmail's daemon after the test (VmHWM)",
         col(g, lambda s: bc.fmt_kib(s["vm_hwm_kib_after"])), "-", "-", "-", "info"),
        ("memory per answered connection, over idle",
         col(g, lambda s: per_conn(s, s["idle_vm_rss_kib"])),
         col(p, lambda s: per_conn(s, s["idle_pss_kib"])), "-", "-", "info"),
        (f"connection {n + 1}, over max_connections",
         col(g, lambda s: s["one_more_reply"] or "not tried"), "-", "-", "-", "info"),
        ("connections dropped by the server while held",
         col(g, lambda s: str(s["dropped_during_hold"])),
         col(p, lambda s: str(s["dropped_during_hold"])), "-", "-", "info"),
    ]

    print(f"{n} TCP connections from 127.0.0.1 opened at once, banners awaited up to "
          f"{args.timeout:g} s, held {args.hold:g} s without a command, then QUIT; "
          f"gosendmail's max_connections = {args.max_connections}; Postfix's smtpd process "
          "limit is its default (100)")
    bc.print_table(rows)
    checks = []
    if g:
        if not g["alive_after"]:
            checks.append("ERROR: gosendmail's daemon was gone after the test")
        if g["other_replies"]:
            checks.append("gosendmail replied " + ", ".join(
                f"{k!r} x{v}" for k, v in g["other_replies"].items()))
        if g["errors"]:
            checks.append("gosendmail connection errors: " + ", ".join(
                f"{k} x{v}" for k, v in g["errors"].items()))
        # The probe over the limit is refused and logged once.
        probe_refused = (g["one_more_reply"] or "").startswith("421")
        if len(g["log_refusals"]) > (1 if probe_refused else 0):
            checks.append(f"gosendmail logged {len(g['log_refusals'])} refusals, e.g.: "
                          f"{g['log_refusals'][0]}")
        if g["log_other_lines"]:
            checks.append(f"NOTE: gosendmail's log has {len(g['log_other_lines'])} other lines, "
                          f"e.g.: " + " | ".join(g["log_other_lines"][:3]))
        if not checks:
            checks.append("gosendmail: no refusal below the limit, no error, no unexpected "
                          "log line")
    if p:
        checks.append(f"Postfix ran {p['processes_hold']} processes while holding; "
                      f"sum of their RSS {bc.fmt_kib(p['rss_sum_hold_kib'])}")
    print("checks: " + "; ".join(checks))
    # Counts and memory of idle connections hardly depend on other work.
    print(bc.busy_note(load_before, load_after, judge=False))
    if g:
        print(f"verdict: gosendmail answered {g['banner_220']} of {n} connections with 220 "
              f"(target: all): {bc.verdict(all_ok)}; its RSS while holding them "
              f"{bc.fmt_kib(g['memory_hold_kib'])} (target < {MEMORY_LIMIT_KIB // 1024} MiB): "
              f"{bc.verdict(mem_ok)}")
    print(f"results: {args.json}")

    meta = bc.parse_meta(args.meta)
    bc.write_json(args.json, {
        "benchmark": "idle",
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": dict(meta, loadavg_before=load_before, loadavg_after=load_after),
        "setup": {"connections": n, "hold_seconds": args.hold, "banner_timeout": args.timeout,
                  "gosendmail_max_connections": args.max_connections,
                  "client_rlimit_nofile": list(nofile), "only": args.only,
                  "gosendmail_port": args.gosendmail_port, "postfix_port": args.postfix_port},
        "gosendmail": g,
        "postfix": p,
        "targets": [
            {"figure": "gosendmail connections answered 220",
             "value": g["banner_220"] if g else None, "want": n, "pass": all_ok},
            {"figure": "gosendmail VmRSS KiB while holding",
             "value": g["memory_hold_kib"] if g else None, "below": MEMORY_LIMIT_KIB,
             "pass": mem_ok},
        ],
        "checks": checks,
    })
    bc.write_text(args.markdown, [
        bc.machine_sentence(meta, load_before, load_after)
        + f" {n} connections opened at once from 127.0.0.1, held {args.hold:g} s; "
        f"gosendmail's max_connections = {args.max_connections}, Postfix's smtpd process "
        "limit its default (100).",
        "",
        *bc.markdown_table(rows),
    ])
    return 3 if all_ok is False or mem_ok is False else 0


if __name__ == "__main__":
    sys.exit(main())
