#!/usr/bin/python3
"""Driver of the "bigqueue" benchmark part (see bigqueue.sh).

Three modes, run in turn by bigqueue.sh on one queue of deferred messages
that scripts/bench/mkqueue wrote:

  bigqueue_driver.py mailq ...   no daemon running: bin/mailq over the whole
                                 queue, output to /dev/null, once with a cold
                                 page cache (after sync and drop_caches) and
                                 several times warm; wall time from just
                                 before the fork to the return of wait4().
                                 One more, untimed run writes the listing to
                                 a file, which is checked (exit status 0,
                                 nothing on stderr, N entries, last line
                                 "Total requests: N"). Writes its record.
  bigqueue_driver.py runner ...  bigqueue.sh has just started the daemon on
                                 the queue: samples its VmRSS, VmHWM and the
                                 bytes it has read (/proc/PID/io rchar, which
                                 tells when its start-up scan of the queue has
                                 read every qf) for at least the settle time
                                 and until the scan's reads have stopped; then
                                 asks for a flush of the whole queue with
                                 `sendmail -q -v` and samples again for the
                                 flush hold, counting the stat=Deferred lines
                                 the daemon logs. Writes its record.
  bigqueue_driver.py report ...  reads both records and what bigqueue.sh
                                 timed (queue build, daemon start and stop),
                                 prints the table and the verdicts, writes
                                 bench-results/bigqueue.json and bigqueue.md.

Standard library only. Exit status: 0 all targets met, 3 a target missed,
2 a run failed or the setup is wrong.
"""

import argparse
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
import bench_common as bc  # noqa: E402  (after the line above)

# From the project's delivery issue: "A queue of 100,000 deferred messages:
# mailq lists it in under 3 s and the runner's RSS stays under 300 MB"
# (MB taken as MiB, the project's unit for sizes).
MAILQ_SECONDS_MAX = 3.0
RSS_LIMIT_KIB = 300 * 1024
SAMPLE_STEP = 0.05  # seconds between two samples of the daemon
SCAN_QUIET = 2.0  # the start-up scan is over once rchar grew this long by
SCAN_QUIET_BYTES = 64 * 1024  # less than this (the daemon's own idle reads)
ENTRY = re.compile(r"^[0-9A-Za-x]{8}[0-9]{6}[ *X] ")


class Failed(Exception):
    pass


# ---- mailq --------------------------------------------------------------------

def run_timed(argv, env, stdout_path, stderr_path, timeout):
    """Run ARGV once; returns (wall seconds, CPU seconds, exit status).
    Killed (and an error) after TIMEOUT seconds."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                env=env, cwd="/")
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            # wait4 rather than Popen.wait: it gives this child's own rusage.
            _, status, usage = os.wait4(proc.pid, 0)
            t1 = time.perf_counter()
        finally:
            timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if t1 - t0 >= timeout:
        raise Failed(f"`{' '.join(argv)}` did not finish within {timeout:g} s")
    return t1 - t0, usage.ru_utime + usage.ru_stime, proc.returncode


def drop_caches():
    """Write back and drop the page cache, dentries and inodes, so the next
    run reads the queue from the disk. Returns an error text, or None."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as f:
            f.write("3\n")
    except OSError as e:
        return f"cannot drop the page cache: {e}"
    return None


def check_listing(path, stderr_path, n, queue_dir):
    """The listing of a full queue: returns a list of problems."""
    problems = []
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().splitlines()
    err = bc.read_lines(stderr_path)
    if err:
        problems.append(f"mailq wrote {len(err)} lines to stderr, e.g.: {err[0]}")
    if not lines:
        return problems + ["mailq printed nothing"]
    entries = sum(1 for line in lines if ENTRY.match(line))
    want_last = f"\t\tTotal requests: {n}"
    if lines[-1] != want_last:
        problems.append(f"last line is {lines[-1]!r}, want {want_last!r}")
    head = f"\t\t{queue_dir} ({n} request{'' if n == 1 else 's'})"
    if head not in lines:
        problems.append(f"no line {head!r}")
    if entries != n:
        problems.append(f"{entries} entries listed, want {n}")
    return problems


def cmd_mailq(args):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C"}
    argv = [args.mailq, "--config", args.config]
    os.makedirs(args.work, exist_ok=True)
    err_path = os.path.join(args.work, "mailq.stderr")
    list_path = os.path.join(args.work, "mailq.out")
    rec = {"argv": argv, "messages": args.messages, "warm_runs": []}

    def once(stdout_path, wrapper=()):
        m0 = bc.machine_cpu_seconds()
        wall, cpu, rc = run_timed([*wrapper, *argv], env, stdout_path, err_path, args.timeout)
        m1 = bc.machine_cpu_seconds()
        if rc != 0:
            raise Failed(f"`{' '.join(argv)}` exited {rc}\n--- its stderr ---\n"
                         + "\n".join(bc.read_lines(err_path)[-20:]) + "\n---")
        other = max(0.0, m1 - m0 - cpu) / (wall * (os.cpu_count() or 1))
        return {"seconds": wall, "cpu_s": cpu, "other_cpu_share": other}

    try:
        # Cold: what an operator gets after a reboot or once the queue's
        # files have left the page cache.
        rec["cold_error"] = drop_caches()
        rec["cold"] = None if rec["cold_error"] else once(os.devnull)
        if rec["cold"]:
            print(f"  mailq, cold cache: {rec['cold']['seconds']:.2f} s", file=sys.stderr)
        else:
            print(f"  mailq, cold cache: not measured ({rec['cold_error']})", file=sys.stderr)
        for i in range(args.runs):
            r = once(os.devnull)
            rec["warm_runs"].append(r)
            print(f"  mailq, warm run {i + 1}/{args.runs}: {r['seconds']:.2f} s", file=sys.stderr)
        # The listing itself, checked, under GNU time for the peak RSS.
        gnu_time = shutil.which("time", path="/usr/bin")
        rss_path = os.path.join(args.work, "mailq.rss")
        wrapper = (gnu_time, "-f", "%M", "-o", rss_path) if gnu_time else ()
        rec["checked_run"] = once(list_path, wrapper)
        rec["rss_kib"] = None
        if gnu_time:
            with open(rss_path, encoding="ascii") as f:
                rec["rss_kib"] = int(f.read().split()[-1])
        problems = check_listing(list_path, err_path, args.messages, args.queue)
        if problems:
            raise Failed("mailq's listing of the queue is wrong: " + "; ".join(problems))
        with open(list_path, encoding="utf-8", errors="replace") as f:
            rec["listing_head"] = [line.rstrip("\n") for line in itertools.islice(f, 9)]
        rec["listing_bytes"] = os.path.getsize(list_path)
    except Failed as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(rec, f, indent=2)
    return 0


# ---- the daemon -----------------------------------------------------------------

def rchar(pid):
    """Bytes the process has read so far (/proc/PID/io), or None."""
    try:
        with open(f"/proc/{pid}/io", encoding="ascii") as f:
            for line in f:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def seconds_since_exec(pid):
    """How long ago PID was started (from its start time in /proc/PID/stat,
    in clock ticks after boot), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    start = int(data[data.rindex(")") + 2:].split()[19]) / bc.CLK_TCK
    return time.clock_gettime(time.CLOCK_BOOTTIME) - start


class DaemonLog:
    """Follows the daemon's log: delivery lines per kind and the IDs of the
    messages tried."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.partial = b""
        self.deferred = self.sent = self.other_to = 0
        self.ids = set()

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            if " to=<" not in line:
                continue
            if " stat=Deferred" in line:
                self.deferred += 1
            elif " stat=Sent" in line:
                self.sent += 1
            else:
                self.other_to += 1
            m = re.search(r"\]: ([0-9A-Za-x]{8}[0-9]{6}): to=<", line)
            if m:
                self.ids.add(m.group(1))


class Sampler:
    def __init__(self, pid):
        self.pid = pid
        self.samples = []  # (seconds since exec, VmRSS, VmHWM, rchar)

    def take(self):
        rss = bc.status_kib(self.pid, "VmRSS")
        hwm = bc.status_kib(self.pid, "VmHWM")
        rc = rchar(self.pid)
        age = seconds_since_exec(self.pid)
        if None in (rss, hwm, rc, age) or not bc.alive(self.pid):
            raise Failed("gosendmail's daemon is not running any more")
        s = (age, rss, hwm, rc)
        self.samples.append(s)
        return s


def thin(samples, keep=400):
    """At most KEEP of SAMPLES, evenly spaced, for the JSON file."""
    step = max(1, -(-len(samples) // keep))
    return [list(s) for s in samples[::step]]


def queue_files(queue):
    qf = df = 0
    for e in os.scandir(queue):
        if e.name.startswith("qf"):
            qf += 1
        elif e.name.startswith("df"):
            df += 1
    return qf, df


def cmd_runner(args):
    pid = args.pid
    log = DaemonLog(args.log)
    rec = {"pid": pid}
    try:
        # -- start-up: the daemon scans the whole queue as it starts.
        smp = Sampler(pid)
        first = smp.take()
        t_begin = time.monotonic()
        last_growth = t_begin
        prev = first
        while True:
            time.sleep(SAMPLE_STEP)
            s = smp.take()
            now = time.monotonic()
            if s[3] - prev[3] >= SCAN_QUIET_BYTES * SAMPLE_STEP / SCAN_QUIET:
                last_growth = now
            prev = s
            if now - t_begin >= args.settle and now - last_growth >= SCAN_QUIET:
                break
            if now - t_begin > args.timeout:
                raise Failed(f"the daemon was still reading {args.timeout:g} s after it "
                             "started (its start-up scan of the queue did not end)")
        # The scan's last read: the last sample whose rchar grew by more than
        # the daemon's idle reads.
        growth = [b for a, b in zip(smp.samples, smp.samples[1:])
                  if b[3] - a[3] >= SCAN_QUIET_BYTES * SAMPLE_STEP / SCAN_QUIET]
        start = {
            "first_sample_after_exec_s": first[0],
            "scan_reads_done_after_exec_s": growth[-1][0] if growth else None,
            "scan_done_before_first_sample": not growth,
            "read_bytes": smp.samples[-1][3],
            "vm_hwm_kib": smp.samples[-1][2],
            "vm_rss_max_kib": max(s[1] for s in smp.samples),
            "vm_rss_end_kib": smp.samples[-1][1],
            "sampled_s": smp.samples[-1][0] - first[0],
            "cpu_s": bc.cpu_seconds(pid),
            "samples": thin(smp.samples),
        }
        rec["start"] = start
        print(f"  daemon start-up: VmHWM {bc.fmt_kib(start['vm_hwm_kib'])}, read "
              f"{start['read_bytes'] / 1048576:.1f} MiB, scan's reads done "
              + ("before the first sample" if not growth
                 else f"{start['scan_reads_done_after_exec_s']:.2f} s after exec"),
              file=sys.stderr)
        # Their next attempt is an hour away: nothing is tried before the flush.
        log.update()
        start["messages_tried"] = len(log.ids)
        start["delivery_lines"] = log.deferred + log.sent + log.other_to

        # -- flush: every message is due now.
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C",
               "GOSENDMAIL_CONFIG": args.config}
        argv = [args.sendmail, "-q", "-v"]
        cpu0 = bc.cpu_seconds(pid)
        # Sampled from the request on: the daemon scans the queue again
        # before it answers.
        smp2 = Sampler(pid)
        log.update()
        before = (log.deferred, log.sent, log.other_to)
        log.ids = set()
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, cwd="/")
        while proc.poll() is None:
            if time.monotonic() - t0 > 60:
                proc.kill()
                proc.wait()
                raise Failed(f"`{' '.join(argv)}` did not answer within 60 s")
            smp2.take()
            time.sleep(SAMPLE_STEP)
        t1 = time.monotonic()
        out = proc.stdout.read().decode("utf-8", "replace").strip()
        proc.stdout.close()
        if proc.returncode != 0:
            raise Failed(f"`{' '.join(argv)}` exited {proc.returncode}: {out}")
        want = f"{args.messages} messages scheduled for delivery"
        flush = {"argv": argv, "answered_after_s": t1 - t0, "output": out,
                 "output_ok": out == want}
        print(f"  sendmail -q: {out!r} after {t1 - t0:.2f} s", file=sys.stderr)
        all_tried_at = None
        while time.monotonic() - t0 < args.flush_hold:
            time.sleep(SAMPLE_STEP)
            smp2.take()
            log.update()
            if all_tried_at is None and len(log.ids) >= args.messages:
                all_tried_at = time.monotonic() - t0
        log.update()
        qf, df = queue_files(args.queue)
        flush.update({
            "hold_s": args.flush_hold,
            "vm_hwm_kib": smp2.samples[-1][2],
            "vm_rss_max_kib": max(s[1] for s in smp2.samples),
            "vm_rss_end_kib": smp2.samples[-1][1],
            "cpu_s": bc.cpu_seconds(pid) - cpu0,
            "deferred_lines": log.deferred - before[0],
            "sent_lines": log.sent - before[1],
            "other_delivery_lines": log.other_to - before[2],
            "messages_tried": len(log.ids),
            "all_tried_after_s": all_tried_at,
            "queue_after": {"qf": qf, "df": df},
            "samples": thin(smp2.samples),
        })
        rec["flush"] = flush
        print(f"  flush: {flush['deferred_lines']} stat=Deferred lines, {len(log.ids)} "
              f"messages tried in {args.flush_hold:g} s; VmHWM "
              f"{bc.fmt_kib(flush['vm_hwm_kib'])}", file=sys.stderr)
        if log.sent:
            raise Failed(f"the daemon logged {log.sent} stat=Sent lines: mail was delivered "
                         "somewhere, which this part must never do")
        if qf != args.messages or df != args.messages:
            raise Failed(f"the queue holds {qf} qf and {df} df files after the flush, "
                         f"want {args.messages} of each (every message deferred again)")
    except Failed as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(rec, f, indent=2)
    return 0


# ---- report ---------------------------------------------------------------------

def daemon_log_other(path):
    """Lines of the daemon's log other than delivery attempts and what it
    writes at start and stop: worth a look."""
    expected = (" to=<", "listener MTA on ", "starting daemon", "stopping daemon",
                "daemon stopped", "user is root")
    return [line for line in bc.read_lines(path) if not any(e in line for e in expected)]


def cmd_report(args):
    with open(args.mailq_json, encoding="utf-8") as f:
        mq = json.load(f)
    with open(args.runner_json, encoding="utf-8") as f:
        rn = json.load(f)
    n = args.messages
    load_after = bc.loadavg()
    warm = [r["seconds"] for r in mq["warm_runs"]]
    warm_med = statistics.median(warm)
    cpu_med = statistics.median(r["cpu_s"] for r in mq["warm_runs"])
    st, fl = rn["start"], rn["flush"]
    build_s = args.build_done - args.build_began
    start_s = args.start_done - args.start_began
    stop_s = args.stop_done - args.stop_began

    mailq_ok = warm_med < MAILQ_SECONDS_MAX
    start_ok = st["vm_hwm_kib"] < RSS_LIMIT_KIB
    flush_ok = fl["vm_hwm_kib"] < RSS_LIMIT_KIB

    def secs(v):
        return "-" if v is None else f"{v:.2f} s"

    scan = ("before the first sample" if st["scan_done_before_first_sample"]
            else f"{st['scan_reads_done_after_exec_s']:.2f} s after exec")
    header = ("figure", "gosendmail", "detail", "runs", "target", "verdict")
    rows = [
        (f"mailq, {n} deferred messages, warm cache: median wall time", secs(warm_med),
         f"{min(warm):.2f}-{max(warm):.2f} s", str(len(warm)),
         f"< {MAILQ_SECONDS_MAX:g} s", bc.verdict(mailq_ok)),
        ("mailq, cold cache (after drop_caches)",
         secs(mq["cold"]["seconds"]) if mq["cold"] else "not measured",
         "-" if mq["cold"] else mq["cold_error"], "1" if mq["cold"] else "0", "-", "info"),
        ("mailq CPU (user + system), warm, median", secs(cpu_med), "-", str(len(warm)), "-",
         "info"),
        ("mailq peak RSS (GNU time)", bc.fmt_kib(mq["rss_kib"]),
         f"listing of {mq['listing_bytes'] / 1048576:.1f} MiB", "1", "-", "info"),
        ("daemon start until it logs \"starting daemon\"", secs(start_s),
         "polled every 0.1 s", "1", "-", "info"),
        ("daemon's start-up scan of the queue: reads done", scan,
         f"{st['read_bytes'] / 1048576:.1f} MiB read", "1", "-", "info"),
        (f"runner peak RSS (VmHWM), start-up, sampled {st['sampled_s']:.0f} s",
         bc.fmt_kib(st["vm_hwm_kib"]), f"VmRSS max {bc.fmt_kib(st['vm_rss_max_kib'])}", "1",
         f"< {RSS_LIMIT_KIB // 1024} MiB", bc.verdict(start_ok)),
        ("sendmail -q (flush all) answered after", secs(fl["answered_after_s"]),
         fl["output"], "1", "-", "info"),
        (f"runner peak RSS (VmHWM) after {fl['hold_s']:g} s of flush",
         bc.fmt_kib(fl["vm_hwm_kib"]), f"VmRSS max {bc.fmt_kib(fl['vm_rss_max_kib'])}", "1",
         f"< {RSS_LIMIT_KIB // 1024} MiB", bc.verdict(flush_ok)),
        (f"stat=Deferred lines logged in {fl['hold_s']:g} s of flush", str(fl["deferred_lines"]),
         f"{fl['messages_tried']} of {n} messages tried"
         + ("" if fl["all_tried_after_s"] is None
            else f", all after {fl['all_tried_after_s']:.1f} s"), "1", "-", "info"),
        (f"daemon CPU during {fl['hold_s']:g} s of flush", secs(fl["cpu_s"]),
         "-", "1", "-", "info"),
        ("daemon stop on SIGTERM, after the flush hold", secs(stop_s), "polled every 0.1 s", "1",
         "-", "info"),
    ]
    setup = (f"a queue of {n} deferred messages (2 KB df, 1-2 remote recipients, next attempt "
             "an hour away) written by scripts/bench/mkqueue through spool; `mailq` to "
             f"/dev/null once cold and {len(warm)} times warm, no daemon running; then "
             "`smtpd` started on the queue, sampled until its start-up scan was over, "
             f"then `sendmail -q` and {fl['hold_s']:g} s more; its DNS server is a dead "
             "loopback port, so every attempt is deferred at once")
    print(setup)
    bc.print_table(rows, header)

    checks = [f"queue built in {build_s:.1f} s",
              f"mailq exited 0 every time; its listing has {n} entries and ends with "
              f"'Total requests: {n}', nothing on stderr"]
    if not fl["output_ok"]:
        checks.append(f"NOTE: sendmail -q -v said {fl['output']!r}, not "
                      f"'{n} messages scheduled for delivery'")
    if st["delivery_lines"]:
        checks.append(f"NOTE: the daemon tried {st['messages_tried']} messages before the "
                      "flush, though their next attempt was an hour away")
    checks.append(f"flush: {fl['sent_lines']} stat=Sent lines (nothing left the machine); "
                  f"{fl['queue_after']['qf']} qf and {fl['queue_after']['df']} df files after")
    if fl["other_delivery_lines"]:
        checks.append(f"NOTE: {fl['other_delivery_lines']} delivery lines neither Deferred "
                      "nor Sent")
    other = daemon_log_other(args.log)
    if other:
        checks.append(f"NOTE: gosendmail's log has {len(other)} other lines, e.g.: "
                      + " | ".join(other[:3]))
    print("checks: " + "; ".join(checks))
    shares = [r["other_cpu_share"] for r in mq["warm_runs"]]
    print(bc.busy_note(args.load_before, load_after, shares))
    print(f"verdict: mailq lists {n} messages in {warm_med:.2f} s warm (target < "
          f"{MAILQ_SECONDS_MAX:g} s): {bc.verdict(mailq_ok)}; the runner's peak RSS "
          f"{bc.fmt_kib(st['vm_hwm_kib'])} at start-up, {bc.fmt_kib(fl['vm_hwm_kib'])} "
          f"with the flush (target < {RSS_LIMIT_KIB // 1024} MiB): "
          f"{bc.verdict(start_ok)}, {bc.verdict(flush_ok)}")
    print(f"results: {args.json}")

    meta = bc.parse_meta(args.meta)
    bc.write_json(args.json, {
        "benchmark": "bigqueue",
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": dict(meta, loadavg_before=args.load_before, loadavg_after=load_after),
        "setup": {"description": setup, "messages": n, "mailq_warm_runs": len(warm),
                  "settle_s": args.settle, "flush_hold_s": fl["hold_s"],
                  "queue_build_s": build_s},
        "mailq": dict(mq, warm_seconds_median=warm_med, warm_cpu_s_median=cpu_med),
        "daemon": dict(rn, start_seconds=start_s, stop_seconds=stop_s,
                       log_other_lines=other[:50]),
        "targets": [
            {"figure": "mailq wall time, warm, median (s)", "value": warm_med,
             "below": MAILQ_SECONDS_MAX, "pass": mailq_ok},
            {"figure": "runner VmHWM KiB after start-up and its queue scan",
             "value": st["vm_hwm_kib"], "below": RSS_LIMIT_KIB, "pass": start_ok},
            {"figure": "runner VmHWM KiB after the flush hold",
             "value": fl["vm_hwm_kib"], "below": RSS_LIMIT_KIB, "pass": flush_ok},
        ],
        "checks": checks,
    })
    bc.write_text(args.markdown, [
        bc.machine_sentence(meta, args.load_before, load_after) + " gosendmail only: "
        + setup + ".",
        "",
        *bc.markdown_table(rows, header),
    ])
    return 0 if mailq_ok and start_ok and flush_ok else 3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    m = sub.add_parser("mailq")
    m.add_argument("--mailq", required=True)
    m.add_argument("--config", required=True)
    m.add_argument("--queue", required=True)
    m.add_argument("--messages", type=int, required=True)
    m.add_argument("--runs", type=int, default=5)
    m.add_argument("--timeout", type=float, default=300)
    m.add_argument("--work", required=True)
    m.add_argument("--out", required=True)
    r = sub.add_parser("runner")
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--queue", required=True)
    r.add_argument("--sendmail", required=True)
    r.add_argument("--config", required=True)
    r.add_argument("--messages", type=int, required=True)
    r.add_argument("--settle", type=float, default=10)
    r.add_argument("--flush-hold", type=float, default=20)
    r.add_argument("--timeout", type=float, default=300)
    r.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--mailq-json", required=True)
    p.add_argument("--runner-json", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--messages", type=int, required=True)
    p.add_argument("--settle", type=float, default=10)
    for what in ("build", "start", "stop"):
        p.add_argument(f"--{what}-began", type=float, required=True)
        p.add_argument(f"--{what}-done", type=float, required=True)
    p.add_argument("--load-before", type=float, required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--markdown", required=True)
    p.add_argument("--meta", action="append", default=[])
    args = ap.parse_args()
    if getattr(args, "messages", 1) < 1 or getattr(args, "runs", 1) < 1:
        ap.error("need messages and runs >= 1")
    return {"mailq": cmd_mailq, "runner": cmd_runner, "report": cmd_report}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
