#!/usr/bin/python3
"""Driver of the "ingest" benchmark part (see ingest.sh).

Sends the same SMTP load with Postfix's smtp-source to Postfix's smtpd and to
gosendmail's daemon, both already running on their own loopback ports, in
runs that alternate which server goes first. A run's accept rate is the
message count divided by smtp-source's wall time (start to exit). smtp-source
stops at the first reply that is not the expected one, so a run that exits 0
had every message answered 250; the counts are checked besides (gosendmail's
queue files and log lines, Postfix's log lines), and each server finishes its
work on a run's messages (delivery to discard or to the sink, or gosendmail's
deferral) before the next run starts.

Standard library only. Exit status: 0 all targets met, 3 a target missed,
2 a run failed or the setup is wrong.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
import bench_common as bc  # noqa: E402  (after the line above)

RATE_RATIO_MIN = 2.0  # gosendmail / Postfix accept rate, from the smtpd issue
# In sink mode (end to end), from the delivery issue: delivered rate at least
# 2x Postfix's, peak memory of all gosendmail processes at most half of
# Postfix's (gosendmail's peak RSS against Postfix's PSS summed over its
# processes right after a run: RSS >= PSS and the peak >= any later sample,
# so the comparison leans against gosendmail).
DELIVERED_RATIO_MIN = 2.0
MEMORY_RATIO_MAX = 0.5
SENDER = "sender@bench.example"
RECIPIENT = "rcpt@sink.bench.example"
HELO = "client.bench.example"


class RunFailed(Exception):
    pass


def wait_until(cond, timeout, step=0.02):
    """Poll COND until it is true or TIMEOUT seconds pass; returns whether it
    became true and when (time.monotonic())."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True, time.monotonic()
        if time.monotonic() > deadline:
            return False, time.monotonic()
        time.sleep(step)


class Side:
    def __init__(self, name, port, delivery):
        self.name = name
        self.port = port
        self.delivery = delivery  # "discard" or "sink", see ingest.sh
        self.runs = []  # dicts, one per timed run

    def rates(self):
        return [r["rate"] for r in self.runs]


class Gosendmail(Side):
    def __init__(self, args):
        super().__init__("gosendmail", args.gosendmail_port, args.delivery)
        self.pid = args.gosendmail_pid
        self.queue = args.gosendmail_queue
        self.log = bc.LogTail(args.gosendmail_log, {
            "received": " from=<", "tried": " stat=", "sent": " stat=Sent",
            "deferred": " stat=Deferred", "discarded": " mailer=discard,"})

    def queue_files(self):
        qf = df = other = 0
        for e in os.scandir(self.queue):
            if not e.is_file(follow_symlinks=False):
                continue
            if e.name.startswith("qf"):
                qf += 1
            elif e.name.startswith("df"):
                df += 1
            else:
                other += 1
        return qf, df, other

    def prepare(self):
        """Start each run on an empty queue, as Postfix's starts on a drained
        one: the last run was worked off in after()."""
        if not bc.alive(self.pid):
            raise RunFailed("gosendmail's daemon is not running any more")
        wait_until(lambda: self.queue_files()[0] == 0, 120)

    def cpu(self):
        c = bc.cpu_seconds(self.pid)
        if c is None:
            raise RunFailed("gosendmail's daemon is not running any more")
        return c

    def after(self, run, n, t0):
        if not bc.alive(self.pid):
            raise RunFailed("gosendmail's daemon died during the run")
        run["vm_hwm_kib"] = bc.status_kib(self.pid, "VmHWM")
        run["vm_rss_kib"] = bc.status_kib(self.pid, "VmRSS")
        run["memory"] = bc.memory_of([self.pid])
        qf, df, other = self.queue_files()
        run["queue_after_run"] = {"qf": qf, "df": df, "other": other}
        before = dict(self.log.counts)

        def done():
            c = self.log.update()
            if c["sent"] < before["sent"] + n:
                return False
            return self.queue_files()[0] == 0

        ok, t_done = wait_until(done, 120)
        run["processed_after_s"] = t_done - t0 if ok else None
        run["cpu_until_processed_s"] = self.cpu() - run["cpu_before_s"]
        c = self.log.counts
        delta = {k: c[k] - before[k] for k in c}
        run["log"] = delta
        qf, df, other = self.queue_files()
        run["queue_after_processing"] = {"qf": qf, "df": df, "other": other}
        if delta["received"] != n:
            raise RunFailed(f"gosendmail answered 250 to {n} messages but logged {delta['received']} "
                            "from= lines")
        if self.delivery == "discard" and delta["discarded"] != delta["sent"]:
            raise RunFailed(f"gosendmail delivered {delta['sent'] - delta['discarded']} messages "
                            "elsewhere than its discard mailer")
        if not ok or delta["sent"] != n or qf:
            where = "to its discard mailer" if self.delivery == "discard" else "to the sink"
            raise RunFailed(f"gosendmail accepted {n} messages; within 120 s it delivered "
                            f"{delta['sent']} {where}, deferred {delta['deferred']}, and "
                            f"{qf} are still queued")


class Postfix(Side):
    def __init__(self, args):
        super().__init__("Postfix", args.postfix_port, args.delivery)
        self.spool = args.postfix_spool
        self.master = args.postfix_master_pid
        self.log = bc.LogTail(args.postfix_log, {
            "sent": "status=sent", "deferred": "status=deferred", "bounced": "status=bounced"})

    def backlog(self):
        return sum(len(os.listdir(os.path.join(self.spool, d)))
                   for d in ("maildrop", "incoming", "active"))

    def deferred(self):
        return sum(len(files) for _, _, files in os.walk(os.path.join(self.spool, "deferred")))

    def prepare(self):
        if not bc.alive(self.master):
            raise RunFailed("Postfix's master is not running any more")
        # The last run was drained in after(); a warm-up or a failed check
        # may have left work, which must not fall into the next run.
        wait_until(lambda: self.backlog() == 0, 120)

    def cpu(self):
        return bc.group_cpu_seconds(bc.pids_in(self.spool), self.master)

    def after(self, run, n, t0):
        # Memory first, while the smtpd and cleanup processes of the run are
        # still there (they stay until max_idle).
        run["memory"] = bc.memory_of(bc.pids_in(self.spool))
        before = dict(self.log.counts)

        def done():
            c = self.log.update()
            return self.backlog() == 0 and (c["sent"] + c["deferred"] + c["bounced"]
                                            >= before["sent"] + before["deferred"]
                                            + before["bounced"] + n)

        ok, t_done = wait_until(done, 120)
        run["processed_after_s"] = t_done - t0 if ok else None
        run["cpu_until_processed_s"] = self.cpu() - run["cpu_before_s"]
        run["log"] = {k: self.log.counts[k] - before[k] for k in before}
        run["deferred_queue"] = self.deferred()


def run_once(side, args, n, pid_file):
    """One smtp-source run of N messages against SIDE; returns its record."""
    argv = [args.smtp_source, "-4", "-M", HELO, "-s", str(args.sessions), "-m", str(n),
            "-l", str(args.size), "-f", SENDER, "-t", RECIPIENT, f"127.0.0.1:{side.port}"]
    side.prepare()
    os.sync()  # the other side's write-back is not charged to this run
    run = {"messages": n, "cpu_before_s": side.cpu()}
    # What the machine did besides: its busy CPU time, less the server's, the
    # client's, this driver's, the sink's and the kernel threads'.
    ours0 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    kernel0 = bc.kernel_threads_cpu_seconds()
    sink0 = bc.cpu_seconds(args.sink_pid) if args.sink_pid else 0.0
    machine0 = bc.machine_cpu_seconds()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, cwd="/")
    try:
        with open(pid_file, "w", encoding="ascii") as f:
            f.write(f"{proc.pid}\n")
        try:
            output, _ = proc.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            raise RunFailed(f"{side.name}: smtp-source did not finish {n} messages within "
                            f"{args.timeout:.0f} s\n--- its output ---\n"
                            f"{output.decode('utf-8', 'replace').rstrip()}\n---")
        t1 = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.unlink(pid_file)
    run["cpu_during_s"] = side.cpu() - run["cpu_before_s"]
    machine1 = bc.machine_cpu_seconds()
    sink1 = bc.cpu_seconds(args.sink_pid) if args.sink_pid else 0.0
    kernel1 = bc.kernel_threads_cpu_seconds()
    ours1 = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    client_s, driver_s = ((b.ru_utime + b.ru_stime) - (a.ru_utime + a.ru_stime)
                          for a, b in zip(ours0, ours1))
    run["client_cpu_s"] = client_s
    run["kernel_threads_cpu_s"] = kernel1 - kernel0
    run["sink_cpu_s"] = (sink1 or 0.0) - (sink0 or 0.0)
    run["other_cpu_s"] = max(0.0, machine1 - machine0 - run["cpu_during_s"] - client_s - driver_s
                             - run["kernel_threads_cpu_s"] - run["sink_cpu_s"])
    if proc.returncode != 0:
        raise RunFailed(f"{side.name}: `{' '.join(argv)}` exited {proc.returncode}\n"
                        f"--- its output ---\n{output.decode('utf-8', 'replace').rstrip()}\n---")
    run["seconds"] = t1 - t0
    run["rate"] = n / run["seconds"]
    run["other_cpu_share"] = run["other_cpu_s"] / (run["seconds"] * (os.cpu_count() or 1))
    side.after(run, n, t0)
    run["argv"] = argv
    return run


def gosendmail_log_other(path):
    """Lines of the daemon's log other than accepted messages, delivery
    attempts and what it writes at start and stop: worth a look."""
    expected = (" from=<", " to=<", "listener MTA on ", "starting daemon", "stopping daemon",
                "daemon stopped", "user is root")
    return [line for line in bc.read_lines(path) if not any(e in line for e in expected)]


DELIVERY = {
    "discard": ("both deliver every message to a discard mailer and remove it from the queue "
                "(Postfix: its discard transport; gosendmail: a mailertable discard: entry)"),
    "sink": "both relay every message over SMTP to one smtp-sink on loopback",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smtp-source", required=True)
    ap.add_argument("--gosendmail-port", type=int, required=True)
    ap.add_argument("--gosendmail-pid", type=int, required=True)
    ap.add_argument("--gosendmail-queue", required=True)
    ap.add_argument("--gosendmail-log", required=True)
    ap.add_argument("--postfix-port", type=int, required=True)
    ap.add_argument("--postfix-spool", required=True)
    ap.add_argument("--postfix-log", required=True)
    ap.add_argument("--postfix-master-pid", type=int, required=True)
    ap.add_argument("--delivery", choices=sorted(DELIVERY), default="discard")
    ap.add_argument("--sink-pid", type=int, default=0, help="smtp-sink's pid (delivery sink)")
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=500)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--client-pid-file", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--meta", action="append", default=[])
    ap.add_argument("--only", choices=("gosendmail", "postfix"))
    args = ap.parse_args()
    if args.messages < 1 or args.runs < 1 or args.sessions < 1 or args.warmup < 0:
        ap.error("need messages, runs, sessions >= 1 and warmup >= 0")

    gsm = Gosendmail(args)
    pfx = Postfix(args)
    sides = [s for s in (gsm, pfx) if args.only in (None, s.name.lower())]

    load_before = bc.loadavg()
    warmups = {}
    # Idle memory: each server as started, before any mail (for Postfix,
    # its master and the few processes it starts on its own).
    idle_memory = {s.name: bc.memory_of([s.pid] if s is gsm else bc.pids_in(s.spool)) for s in sides}
    try:
        # Untimed first: Postfix's master spawns its smtpd and cleanup
        # processes, both fill their caches; the runs then start warm.
        if args.warmup:
            for side in sides:
                warmups[side.name] = run_once(side, args, args.warmup, args.client_pid_file)
                print(f"  warm-up: {args.warmup} messages to {side.name}", file=sys.stderr)
        for r in range(args.runs):
            order = sides if r % 2 == 0 else sides[::-1]
            for side in order:
                run = run_once(side, args, args.messages, args.client_pid_file)
                side.runs.append(run)
                print(f"  run {r + 1}/{args.runs}: {side.name} {run['rate']:.0f} msg/s "
                      f"({run['seconds']:.2f} s)", file=sys.stderr)
    except RunFailed as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    load_after = bc.loadavg()

    def summary(side):
        if side not in sides:
            return None
        rates = side.rates()
        secs = [r["seconds"] for r in side.runs]
        cpu_per_msg_ms = [r["cpu_during_s"] / r["messages"] * 1000 for r in side.runs]
        processed = [r["processed_after_s"] for r in side.runs]
        delivered = ([r["messages"] / r["processed_after_s"] for r in side.runs]
                     if None not in processed else None)
        return {
            "rate_msg_s": {"median": statistics.median(rates), "min": min(rates), "max": max(rates)},
            "delivered_msg_s_median": statistics.median(delivered) if delivered else None,
            "seconds_median": statistics.median(secs),
            "cpu_ms_per_msg_median": statistics.median(cpu_per_msg_ms),
            "processed_after_s_median": (statistics.median(processed)
                                         if None not in processed else None),
            "cpu_ms_per_msg_until_processed_median": statistics.median(
                r["cpu_until_processed_s"] / r["messages"] * 1000 for r in side.runs),
            "kernel_cpu_ms_per_msg_median": statistics.median(
                r["kernel_threads_cpu_s"] / r["messages"] * 1000 for r in side.runs),
            "client_cpu_ms_per_msg_median": statistics.median(
                r["client_cpu_s"] / r["messages"] * 1000 for r in side.runs),
            "other_cpu_share_median": statistics.median(r["other_cpu_share"] for r in side.runs),
            "memory_end_pss_kib_max": max(r["memory"]["pss_kib"] for r in side.runs),
            "memory_end_rss_kib_max": max(r["memory"]["rss_kib"] for r in side.runs),
            "processes_end_max": max(r["memory"]["processes"] for r in side.runs),
            "memory_idle": idle_memory.get(side.name),
            "runs": side.runs,
            "warmup": warmups.get(side.name),
        }

    g = summary(gsm)
    p = summary(pfx)
    both = g is not None and p is not None
    ratio = g["rate_msg_s"]["median"] / p["rate_msg_s"]["median"] if both else None
    rate_ok = None if ratio is None else ratio >= RATE_RATIO_MIN
    gs_hwm = max(r["vm_hwm_kib"] for r in gsm.runs) if g else None
    e2e = args.delivery == "sink"
    d_ratio = None
    if both and g["delivered_msg_s_median"] and p["delivered_msg_s_median"]:
        d_ratio = g["delivered_msg_s_median"] / p["delivered_msg_s_median"]
    d_ok = None if d_ratio is None or not e2e else d_ratio >= DELIVERED_RATIO_MIN
    m_ratio = gs_hwm / p["memory_end_pss_kib_max"] if both and p["memory_end_pss_kib_max"] else None
    m_ok = None if m_ratio is None or not e2e else m_ratio <= MEMORY_RATIO_MAX

    def col(s, f):
        return "-" if s is None else f(s)

    def rt(f):
        return "-" if not both or not f(p) or f(g) is None else f"{f(g) / f(p):.2f}"

    def secs(v):
        return "not within 120 s" if v is None else f"{v:.2f} s"

    rows = [
        ("accept rate, median of runs",
         col(g, lambda s: f"{s['rate_msg_s']['median']:.0f} msg/s"),
         col(p, lambda s: f"{s['rate_msg_s']['median']:.0f} msg/s"),
         "-" if ratio is None else f"{ratio:.2f}", f"ratio >= {RATE_RATIO_MIN:.1f}",
         bc.verdict(rate_ok)),
        ("accept rate, slowest-fastest run",
         col(g, lambda s: f"{s['rate_msg_s']['min']:.0f}-{s['rate_msg_s']['max']:.0f} msg/s"),
         col(p, lambda s: f"{s['rate_msg_s']['min']:.0f}-{s['rate_msg_s']['max']:.0f} msg/s"),
         "-", "-", "info"),
        ("wall time of smtp-source, median",
         col(g, lambda s: f"{s['seconds_median']:.2f} s"),
         col(p, lambda s: f"{s['seconds_median']:.2f} s"),
         rt(lambda s: s["seconds_median"]), "-", "info"),
        ("server CPU per message during a run",
         col(g, lambda s: f"{s['cpu_ms_per_msg_median']:.3f} ms"),
         col(p, lambda s: f"{s['cpu_ms_per_msg_median']:.3f} ms"),
         rt(lambda s: s["cpu_ms_per_msg_median"]), "-", "info"),
        ("delivered rate (messages / time until worked off), median",
         col(g, lambda s: "-" if s["delivered_msg_s_median"] is None
             else f"{s['delivered_msg_s_median']:.0f} msg/s"),
         col(p, lambda s: "-" if s["delivered_msg_s_median"] is None
             else f"{s['delivered_msg_s_median']:.0f} msg/s"),
         "-" if d_ratio is None else f"{d_ratio:.2f}",
         f"ratio >= {DELIVERED_RATIO_MIN:.1f}" if e2e else "-",
         bc.verdict(d_ok) if e2e else "info"),
        ("queue worked off after (from start), median",
         col(g, lambda s: secs(s["processed_after_s_median"])),
         col(p, lambda s: secs(s["processed_after_s_median"])),
         rt(lambda s: s["processed_after_s_median"]), "-", "info"),
        ("server CPU per message until worked off",
         col(g, lambda s: f"{s['cpu_ms_per_msg_until_processed_median']:.3f} ms"),
         col(p, lambda s: f"{s['cpu_ms_per_msg_until_processed_median']:.3f} ms"),
         rt(lambda s: s["cpu_ms_per_msg_until_processed_median"]), "-", "info"),
        ("kernel threads' CPU per message (journal, I/O)",
         col(g, lambda s: f"{s['kernel_cpu_ms_per_msg_median']:.3f} ms"),
         col(p, lambda s: f"{s['kernel_cpu_ms_per_msg_median']:.3f} ms"),
         rt(lambda s: s["kernel_cpu_ms_per_msg_median"]), "-", "info"),
        ("smtp-source CPU per message",
         col(g, lambda s: f"{s['client_cpu_ms_per_msg_median']:.3f} ms"),
         col(p, lambda s: f"{s['client_cpu_ms_per_msg_median']:.3f} ms"),
         "-", "-", "info"),
        ("other programs on the machine during a run",
         col(g, lambda s: f"{s['other_cpu_share_median'] * 100:.0f}% of the CPUs"),
         col(p, lambda s: f"{s['other_cpu_share_median'] * 100:.0f}% of the CPUs"),
         "-", "-", "info"),
        ("memory idle (before any mail), sum of PSS",
         col(g, lambda s: f"{bc.fmt_kib(s['memory_idle']['pss_kib'])} ({s['memory_idle']['processes']} process)"),
         col(p, lambda s: f"{bc.fmt_kib(s['memory_idle']['pss_kib'])} "
                          f"({s['memory_idle']['processes']} processes)"),
         rt(lambda s: s["memory_idle"]["pss_kib"]), "-", "info"),
        ("memory after a run, sum of PSS",
         col(g, lambda s: f"{bc.fmt_kib(s['memory_end_pss_kib_max'])} (1 process)"),
         col(p, lambda s: f"{bc.fmt_kib(s['memory_end_pss_kib_max'])} "
                          f"({s['processes_end_max']} processes)"),
         rt(lambda s: s["memory_end_pss_kib_max"]), "-", "info"),
        ("peak memory: gosendmail's VmHWM, Postfix's PSS sum",
         bc.fmt_kib(gs_hwm) if g else "-",
         col(p, lambda s: bc.fmt_kib(s["memory_end_pss_kib_max"])),
         "-" if m_ratio is None else f"{m_ratio:.2f}",
         f"ratio <= {MEMORY_RATIO_MAX:.1f}" if e2e else "-",
         bc.verdict(m_ok) if e2e else "info"),
    ]

    print(f"{args.runs} runs each of `smtp-source -s {args.sessions} -m {args.messages} "
          f"-l {args.size}` over loopback, alternating which server goes first, after "
          f"{args.warmup} untimed messages each; accept rate = messages / wall time; "
          "ratio = gosendmail / Postfix")
    print(f"delivery ({args.delivery}): {DELIVERY[args.delivery]}")
    bc.print_table(rows)

    checks = []
    if g:
        other = gosendmail_log_other(args.gosendmail_log)
        g["log_other_lines"] = other[:50]
        checks.append("gosendmail: logged " + ", ".join(
            str(r["log"]["received"]) for r in gsm.runs) + " from= and " + ", ".join(
            str(r["log"]["sent"]) for r in gsm.runs) + f" Sent lines for runs of "
            f"{args.messages}; queue empty after each")
        if other:
            checks.append(f"NOTE: gosendmail's log has {len(other)} other lines, e.g.: "
                          + " | ".join(other[:3]))
    if p:
        problems = bc.postfix_problems(args.postfix_log)
        where = "discard" if args.delivery == "discard" else "the sink"
        checks.append(f"Postfix: delivered to {where} " + ", ".join(
            str(r["log"]["sent"]) for r in pfx.runs) + f" of {args.messages} per run")
        bad = [r for r in pfx.runs if r["log"]["sent"] != r["messages"] or r["deferred_queue"]
               or r["processed_after_s"] is None]
        if bad:
            checks.append("WARNING: Postfix did not deliver everything it accepted within 120 s")
        if problems:
            checks.append(f"NOTE: Postfix logged {len(problems)} warnings, e.g.: " + problems[0])
        p["log_problems"] = problems[:50]
    print("checks: " + "; ".join(checks))
    print(bc.busy_note(load_before, load_after, [r["other_cpu_share"] for s in sides for r in s.runs]))
    if both:
        print(f"verdict: gosendmail accepts {g['rate_msg_s']['median']:.0f} msg/s, Postfix "
              f"{p['rate_msg_s']['median']:.0f} msg/s: ratio {ratio:.2f} (target >= "
              f"{RATE_RATIO_MIN:.1f}): {bc.verdict(rate_ok)}")
        if e2e and d_ratio is not None:
            print(f"verdict: end to end, gosendmail delivers {g['delivered_msg_s_median']:.0f} "
                  f"msg/s, Postfix {p['delivered_msg_s_median']:.0f} msg/s: ratio {d_ratio:.2f} "
                  f"(target >= {DELIVERED_RATIO_MIN:.1f}): {bc.verdict(d_ok)}; peak memory "
                  f"ratio {m_ratio:.2f} (target <= {MEMORY_RATIO_MAX:.1f}): {bc.verdict(m_ok)}")
    else:
        print(f"verdict: accept rate ratio: n/a (only {sides[0].name} was measured)")
    print(f"results: {args.json}")

    meta = bc.parse_meta(args.meta)
    bc.write_json(args.json, {
        "benchmark": "ingest",
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": dict(meta, loadavg_before=load_before, loadavg_after=load_after),
        "setup": {"messages": args.messages, "sessions": args.sessions, "payload_bytes": args.size,
                  "runs": args.runs, "warmup": args.warmup, "only": args.only,
                  "delivery": args.delivery, "delivery_means": DELIVERY[args.delivery],
                  "gosendmail_port": args.gosendmail_port, "postfix_port": args.postfix_port,
                  "smtp_source": args.smtp_source},
        "gosendmail": g,
        "postfix": p,
        "ratios": {"accept_rate": ratio, "delivered_rate": d_ratio, "peak_memory": m_ratio},
        "targets": [{"figure": "accept rate ratio gosendmail/Postfix (medians)", "value": ratio,
                     "at_least": RATE_RATIO_MIN, "pass": rate_ok}] + ([
                    {"figure": "delivered rate ratio gosendmail/Postfix (medians)",
                     "value": d_ratio, "at_least": DELIVERED_RATIO_MIN, "pass": d_ok},
                    {"figure": "peak memory ratio gosendmail VmHWM / Postfix PSS sum",
                     "value": m_ratio, "at_most": MEMORY_RATIO_MAX, "pass": m_ok}] if e2e else []),
        "checks": checks,
    })
    bc.write_text(args.markdown, [
        bc.machine_sentence(meta, load_before, load_after)
        + f" {args.runs} runs each of `smtp-source -s {args.sessions} -m {args.messages} "
        f"-l {args.size}` over loopback, alternating; delivery: {DELIVERY[args.delivery]}; "
        "ratio = gosendmail / Postfix.",
        "",
        *bc.markdown_table(rows),
    ])
    return 3 if False in (rate_ok, d_ok, m_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
