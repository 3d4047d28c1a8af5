#!/usr/bin/python3
"""Timing driver of the "submit" benchmark part (see submit.sh).

Runs `sendmail -t -i` of gosendmail and of Postfix sequentially, interleaved
in rounds whose order alternates so that drift in the machine's speed (other
load, CPU frequency, disk write-back) lands on both sides alike. Every
submission is one fresh process started from here; its latency is the wall
time from just before the fork to the return of wait4().

Memory is measured in a separate, untimed pass through GNU time (%M), not
from the timed children: Linux records the peak RSS of the image a process
replaces at exec, so a child forked (or vforked) by this Python process would
report Python's own RSS. GNU time is a small C program, so its floor
(/bin/true measures about 1 MiB) stays below what a sendmail uses. %M also
covers any helper the measured process waited for (Postfix's postdrop).

Standard library only. Exit status: 0 all targets met, 3 a target missed,
2 a submission failed or the setup is wrong.
"""

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

# Targets from the project's issue.
LATENCY_RATIO_MAX = 0.5  # gosendmail median / Postfix median
RSS_LIMIT_KIB = 15 * 1024  # "15 MB" in the project's units (powers of 1024)

RECIPIENT = "someone@bench.example"


def make_message():
    lines = [
        f"To: {RECIPIENT}",
        "Subject: gosendmail submission benchmark",
        "",
    ]
    lines += [f"Body line {i} of a small message for the local submission benchmark." for i in range(1, 11)]
    return ("\n".join(lines) + "\n").encode("ascii")


class SubmissionFailed(Exception):
    pass


class Impl:
    """One sendmail implementation and how to call it."""

    def __init__(self, name, argv, env):
        self.name = name
        self.argv = argv
        self.env = env
        self.lat_ns = []
        self.cpu_us = []
        self.rss_kib = []
        self.submissions = 0  # timed or not

    def submit(self, message, record=True, wrapper=()):
        t0 = time.perf_counter_ns()
        proc = subprocess.Popen(
            [*wrapper, *self.argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one pipe: read to EOF, no deadlock
            env=self.env,
            cwd="/",
        )
        try:
            proc.stdin.write(message)
        except BrokenPipeError:
            pass  # it exited without reading; its status says why
        proc.stdin.close()
        output = proc.stdout.read()
        proc.stdout.close()
        # wait4 rather than Popen.wait: it gives this child's own rusage.
        _, status, usage = os.wait4(proc.pid, 0)
        t1 = time.perf_counter_ns()
        proc.returncode = os.waitstatus_to_exitcode(status)
        self.submissions += 1
        if proc.returncode != 0:
            raise SubmissionFailed(
                f"{self.name}: `{' '.join(self.argv)}` exited {proc.returncode}\n"
                f"--- its output ---\n{output.decode('utf-8', 'replace').rstrip()}\n---"
            )
        if record:
            self.lat_ns.append(t1 - t0)
            self.cpu_us.append(round((usage.ru_utime + usage.ru_stime) * 1e6))
        return output

    def measure_rss(self, message, gnu_time, out_path):
        """One untimed submission under GNU time; records its peak RSS."""
        self.submit(message, record=False, wrapper=(gnu_time, "-f", "%M", "-o", out_path))
        with open(out_path, encoding="ascii") as f:
            self.rss_kib.append(int(f.read().split()[-1]))


def percentile(values, p):
    """Nearest-rank percentile: the smallest sample with p% at or below it."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def summarize(impl):
    ms = [n / 1e6 for n in impl.lat_ns]
    return {
        "samples": len(ms),
        "latency_ms": {
            "median": statistics.median(ms),
            "p90": percentile(ms, 90),
            "p99": percentile(ms, 99),
            "mean": statistics.fmean(ms),
            "min": min(ms),
            "max": max(ms),
        },
        "rss_kib": {
            "peak": max(impl.rss_kib),
            "median": statistics.median(impl.rss_kib),
        },
        "cpu_ms_median": statistics.median(impl.cpu_us) / 1000,
        # Raw samples, in submission order, for anyone who wants a plot.
        "latency_us_samples": [round(n / 1000) for n in impl.lat_ns],
        "rss_kib_samples": impl.rss_kib,
    }


def count_files(dirs):
    n = 0
    for d in dirs:
        for _, _, files in os.walk(d):
            n += len(files)
    return n


def postfix_backlog(queue):
    return sum(len(os.listdir(os.path.join(queue, d))) for d in ("maildrop", "incoming", "active"))


def wait_postfix_drained(queue, timeout=60.0):
    """Let pickup/cleanup/qmgr finish before the other side is timed, so
    gosendmail is not charged for Postfix's background work."""
    deadline = time.monotonic() + timeout
    while postfix_backlog(queue) > 0:
        if time.monotonic() > deadline:
            raise SubmissionFailed(f"Postfix did not drain its queue {queue} within {timeout:.0f}s")
        time.sleep(0.02)


def postfix_delivered(log):
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            return sum(1 for line in f if "status=sent (benchmark)" in line)
    except FileNotFoundError:
        return 0


def loadavg():
    """The 1-minute load average: other work on the machine shows up as
    latency noise, so the report says how busy the machine was."""
    with open("/proc/loadavg", encoding="ascii") as f:
        return float(f.read().split()[0])


def fmt_ms(v):
    return f"{v:.3f} ms"


def fmt_kib(v):
    return f"{v / 1024:.2f} MiB ({v:.0f} KiB)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gosendmail", required=True)
    ap.add_argument("--gosendmail-config", required=True)
    ap.add_argument("--gosendmail-spool", action="append", default=[],
                    help="directory where accepted submissions must appear (repeatable)")
    ap.add_argument("--postfix", required=True, help="Postfix's sendmail")
    ap.add_argument("--postfix-config", required=True, help="the instance's config directory")
    ap.add_argument("--postfix-queue", required=True)
    ap.add_argument("--postfix-log", required=True)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--rss-samples", type=int, default=50,
                    help="submissions per implementation measured for RSS (untimed)")
    ap.add_argument("--gnu-time", default="/usr/bin/time")
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--meta", action="append", default=[], help="key=value about the machine")
    ap.add_argument("--only", choices=("gosendmail", "postfix"),
                    help="measure one side alone (no ratio, no verdict)")
    args = ap.parse_args()
    if args.count < 1 or args.rounds < 1 or args.rounds > args.count:
        ap.error("need count >= rounds >= 1")
    if args.rss_samples < 1:
        ap.error("need --rss-samples >= 1")

    # The same small, fixed environment for both, with nothing but the
    # variable that points each at its configuration.
    base_env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C",
        "LC_ALL": "C",
    }
    gsm = Impl("gosendmail", [args.gosendmail, "-t", "-i"],
               dict(base_env, GOSENDMAIL_CONFIG=args.gosendmail_config))
    pfx = Impl("Postfix", [args.postfix, "-t", "-i"],
               dict(base_env, MAIL_CONFIG=args.postfix_config))
    floor = Impl("harness floor (/bin/true)", ["/bin/true"], dict(base_env))
    message = make_message()
    impls = [i for i in (gsm, pfx) if args.only in (None, i.name.lower())]

    load_before = loadavg()
    try:
        # Sanity first: each accepts one message, and gosendmail's lands in
        # its spool (exit 0 without a file would make the timing meaningless).
        if gsm in impls:
            before = count_files(args.gosendmail_spool)
            gsm.submit(message, record=False)
            if count_files(args.gosendmail_spool) <= before:
                raise SubmissionFailed(
                    "gosendmail: sendmail exited 0 but no file appeared in "
                    + ", ".join(args.gosendmail_spool))
        if pfx in impls:
            pfx.submit(message, record=False)

        # Warm the page cache and the dynamic loader for both.
        for _ in range(args.warmup):
            for impl in impls:
                impl.submit(message, record=False)
        wait_postfix_drained(args.postfix_queue)

        gc.disable()  # no collector pauses inside the timed loops
        base, extra = divmod(args.count, args.rounds)
        for r in range(args.rounds):
            n = base + (1 if r < extra else 0)
            order = impls if r % 2 == 0 else impls[::-1]
            for impl in order:
                for _ in range(n):
                    impl.submit(message)
                if impl is pfx:
                    wait_postfix_drained(args.postfix_queue)
            print(f"  round {r + 1}/{args.rounds}: {n} submissions each, "
                  f"{' then '.join(i.name for i in order)}", file=sys.stderr)
        for _ in range(100):
            floor.submit(b"")
        gc.enable()

        # Peak RSS, untimed, interleaved as well.
        with tempfile.TemporaryDirectory(prefix="bench-rss.") as tmp:
            out = os.path.join(tmp, "maxrss")
            for _ in range(args.rss_samples):
                for impl in impls:
                    impl.measure_rss(message, args.gnu_time, out)
            floor.measure_rss(b"", args.gnu_time, out)
        wait_postfix_drained(args.postfix_queue)
    except SubmissionFailed as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2

    load_after = loadavg()

    # Postfix really ran: everything it accepted went through pickup, cleanup,
    # qmgr and the discard transport. postlogd writes asynchronously.
    deadline = time.monotonic() + 30
    while postfix_delivered(args.postfix_log) < pfx.submissions and time.monotonic() < deadline:
        time.sleep(0.1)
    pf_delivered = postfix_delivered(args.postfix_log)
    pf_deferred = len(os.listdir(os.path.join(args.postfix_queue, "deferred")))
    gs_files = count_files(args.gosendmail_spool)
    if gs_files < gsm.submissions:
        print(f"bench: error: gosendmail accepted {gsm.submissions} messages (exit 0) "
              f"but its spool holds {gs_files} files", file=sys.stderr)
        return 2

    g = summarize(gsm) if gsm in impls else None
    p = summarize(pfx) if pfx in impls else None
    f = summarize(floor)
    both = g is not None and p is not None

    def side(summary, pick, fmt):
        return fmt(pick(summary)) if summary else "-"

    def ratio(pick):
        return pick(g) / pick(p) if both and pick(p) else None

    def verdict(ok):
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    ratio_median = ratio(lambda s: s["latency_ms"]["median"])
    lat_ok = None if ratio_median is None else ratio_median <= LATENCY_RATIO_MAX
    rss_ok = None if g is None else g["rss_kib"]["peak"] < RSS_LIMIT_KIB
    figures = [
        # name, pick, format, target text, pass?
        ("median latency per submission", lambda s: s["latency_ms"]["median"], fmt_ms,
         f"ratio <= {LATENCY_RATIO_MAX:.2f}", lat_ok),
        ("p99 latency per submission", lambda s: s["latency_ms"]["p99"], fmt_ms, "-", "info"),
        ("mean latency per submission", lambda s: s["latency_ms"]["mean"], fmt_ms, "-", "info"),
        ("peak RSS of one sendmail process", lambda s: s["rss_kib"]["peak"], fmt_kib,
         f"gosendmail < {RSS_LIMIT_KIB // 1024} MiB", rss_ok),
        ("median CPU time (user+sys)", lambda s: s["cpu_ms_median"], fmt_ms, "-", "info"),
    ]
    rows = []
    ratios = {}
    for name, pick, fmt, target, ok in figures:
        rt = ratio(pick)
        ratios[name] = rt
        rows.append((name, side(g, pick, fmt), side(p, pick, fmt),
                     "-" if rt is None else f"{rt:.3f}", target,
                     ok if ok == "info" else verdict(ok)))
    header = ("figure", "gosendmail", "Postfix", "ratio", "target", "verdict")
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(cols):
        return "  ".join(c.ljust(w) if i in (0, 4, 5) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cols, widths))).rstrip()

    print(f"{args.count} sequential `sendmail -t -i` submissions each, timed "
          f"({args.rounds} interleaved rounds after {args.warmup} warm-up), and {args.rss_samples} "
          "each under GNU time for RSS; ratio = gosendmail / Postfix")
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
    print(f"harness floor: spawning /bin/true the same way takes {fmt_ms(f['latency_ms']['median'])} "
          f"(median; part of both sides' latency) and {f['rss_kib']['peak']} KiB under GNU time "
          "(the smallest RSS this method can report)")
    checks = []
    if p:
        # Not fatal: a submission's latency stands once postdrop accepted it.
        checks.append(("WARNING: " if pf_delivered < pfx.submissions or pf_deferred else "")
                      + f"Postfix delivered {pf_delivered} of {pfx.submissions} submissions to its "
                      f"discard transport ({pf_deferred} deferred)")
    if g:
        checks.append(f"gosendmail's spool holds {gs_files} files for {gsm.submissions} submissions")
    print("checks: " + "; ".join(checks))
    cpus = os.cpu_count() or 1
    busy = max(load_before, load_after) > cpus / 2
    print(f"load: 1-minute load average {load_before:.2f} before, {load_after:.2f} after, on {cpus} CPUs"
          + ("; the machine was busy with other work, so latencies are noisy (CPU time is steadier)"
             if busy else ""))
    if both:
        print(f"verdict: median latency {g['latency_ms']['median']:.3f} ms vs Postfix "
              f"{p['latency_ms']['median']:.3f} ms, ratio {ratio_median:.3f} "
              f"(target <= {LATENCY_RATIO_MAX:.2f}): {verdict(lat_ok)}")
    else:
        print(f"verdict: median latency ratio: n/a (only {impls[0].name} was measured)")
    if g:
        print(f"verdict: peak RSS of one gosendmail sendmail {g['rss_kib']['peak']} KiB = "
              f"{g['rss_kib']['peak'] / 1024:.2f} MiB (target < {RSS_LIMIT_KIB // 1024} MiB"
              + (f"; Postfix {p['rss_kib']['peak']} KiB" if p else "") + f"): {verdict(rss_ok)}")
    else:
        print("verdict: peak RSS of gosendmail: n/a (gosendmail was not measured)")
    print(f"results: {args.json}")

    meta = dict(kv.split("=", 1) for kv in args.meta if "=" in kv)
    results = {
        "benchmark": "submit",
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": dict(meta, loadavg_before=load_before, loadavg_after=load_after),
        "setup": {
            "count": args.count,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "rss_samples": args.rss_samples,
            "message_bytes": len(message),
            "only": args.only,
            "gosendmail": gsm.argv,
            "postfix": pfx.argv,
        },
        "gosendmail": g,
        "postfix": p,
        "harness_floor": {k: f[k] for k in ("samples", "latency_ms", "rss_kib")},
        "ratios": {
            "median_latency": ratios["median latency per submission"],
            "p99_latency": ratios["p99 latency per submission"],
            "peak_rss": ratios["peak RSS of one sendmail process"],
        },
        "targets": [
            {"figure": "median latency ratio gosendmail/Postfix", "value": ratio_median,
             "at_most": LATENCY_RATIO_MAX, "pass": lat_ok},
            {"figure": "gosendmail peak RSS KiB", "value": g["rss_kib"]["peak"] if g else None,
             "below": RSS_LIMIT_KIB, "pass": rss_ok},
        ],
        "checks": {
            "postfix_submissions": pfx.submissions,
            "postfix_delivered": pf_delivered,
            "postfix_deferred": pf_deferred,
            "gosendmail_submissions": gsm.submissions,
            "gosendmail_spool_files": gs_files,
        },
    }
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=2)
        fh.write("\n")

    md = [
        f"Measured {results['time_utc']} at commit {meta.get('git_commit', '?')} on "
        f"{meta.get('cpu_model', '?')} ({meta.get('nproc', '?')} CPUs), kernel {meta.get('kernel', '?')}, "
        f"{meta.get('os', '?')}, spool on {meta.get('spool_fs', '?')}; Postfix "
        f"{meta.get('postfix_version', '?')}; load average {load_before:.2f} before, {load_after:.2f} "
        f"after. {args.count} timed submissions each in {args.rounds} "
        f"interleaved rounds, {args.rss_samples} more each under GNU time for RSS; "
        "ratio = gosendmail / Postfix.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md.append("")
    with open(args.markdown, "w", encoding="utf-8") as fh:
        fh.write("\n".join(md))

    if lat_ok is False or rss_ok is False:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
