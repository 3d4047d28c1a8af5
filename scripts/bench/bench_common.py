"""Helpers shared by the drivers of the server benchmark parts (ingest_driver.py,
idle_driver.py): reading a process's memory and CPU from /proc, finding the
processes of the private Postfix instance, and printing the results table.

Standard library only. Imported from the drivers' own directory.
"""

import json
import os
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- /proc ------------------------------------------------------------------

def status_kib(pid, field):
    """A `VmXxx:` line of /proc/PID/status in KiB, or None if the process
    is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def rollup_kib(pid):
    """{"Pss": KiB, "Rss": KiB} of one process from smaps_rollup, or None if
    it is gone (processes of a busy Postfix come and go)."""
    out = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Pss", "Rss"):
                    out[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out if len(out) == 2 else None


def pids_in(directory):
    """Processes whose working directory is DIRECTORY or below it. Every
    Postfix daemon sits in its queue directory, so this finds the processes
    of one instance and of no other."""
    pids = []
    prefix = directory.rstrip("/") + "/"
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{name}/cwd")
        except OSError:
            continue
        if cwd == directory or cwd.startswith(prefix):
            pids.append(int(name))
    return pids


def memory_of(pids):
    """Sum of PSS and of RSS (KiB) over PIDS, and how many were measured."""
    pss = rss = n = 0
    for pid in pids:
        r = rollup_kib(pid)
        if r is None:
            continue
        pss += r["Pss"]
        rss += r["Rss"]
        n += 1
    return {"pss_kib": pss, "rss_kib": rss, "processes": n}


def _stat_fields(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        data = f.read()
    # The command name may hold spaces and parentheses: split after the last ')'.
    return data[data.rindex(")") + 2:].split()


def cpu_seconds(pid, children=False):
    """User + system CPU of PID (with children=True, also of the children it
    has reaped), in seconds; None if it is gone."""
    try:
        f = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    # Fields after the command: state is [0], utime [11], stime [12],
    # cutime [13], cstime [14].
    ticks = int(f[11]) + int(f[12])
    if children:
        ticks += int(f[13]) + int(f[14])
    return ticks / CLK_TCK


def kernel_threads_cpu_seconds():
    """CPU used so far by the kernel's own threads (children of kthreadd):
    the journal, writeback and other work that fsync and the network stack
    cause on behalf of the measured programs, which their own CPU time does
    not include."""
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            f = _stat_fields(int(name))
        except (OSError, ValueError):
            continue
        if name == "2" or f[1] == "2":  # fields: state [0], ppid [1]
            total += int(f[11]) + int(f[12])
    return total / CLK_TCK


def group_cpu_seconds(pids, parent):
    """CPU of a group of processes that PARENT forks and reaps (Postfix's
    master and its daemons): the live processes' own CPU plus what the
    parent has collected from children that exited. The difference of two
    readings is the CPU the group used in between, processes that came and
    went included."""
    total = 0.0
    for pid in pids:
        c = cpu_seconds(pid, children=(pid == parent))
        if c is not None:
            total += c
    return total


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def machine_cpu_seconds():
    """CPU time the whole machine has spent busy (all CPUs, not idle and not
    waiting for I/O), from /proc/stat. Less what the measured programs used,
    it is the other work that competed with them."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = f.readline().split()
    # cpu user nice system idle iowait irq softirq steal guest guest_nice;
    # guest time is already counted in user.
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def loadavg():
    with open("/proc/loadavg", encoding="ascii") as f:
        return float(f.read().split()[0])


# ---- logs -------------------------------------------------------------------

def read_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


class LogTail:
    """Counts lines containing given substrings in a growing log file,
    reading only what was added since the last call."""

    def __init__(self, path, patterns):
        self.path = path
        self.patterns = patterns  # name -> substring
        self.counts = dict.fromkeys(patterns, 0)
        self.offset = 0
        self.partial = b""

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.counts
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            for name, sub in self.patterns.items():
                if sub in line:
                    self.counts[name] += 1
        return self.counts


def postfix_problems(log):
    """Postfix's own complaints (warning, error, fatal, panic) in its log."""
    return [line for line in read_lines(log)
            if any(w in line for w in (" warning: ", " error: ", " fatal: ", " panic: "))]


# ---- output -----------------------------------------------------------------

HEADER = ("figure", "gosendmail", "Postfix", "ratio", "target", "verdict")


def verdict(ok):
    if ok == "info":
        return "info"
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def print_table(rows, header=HEADER):
    """Columns 0, 4 and 5 (figure, target, verdict) are left-aligned, the
    figures right-aligned; HEADER names six columns, as does a part's own."""
    widths = [max(len(r[i]) for r in list(rows) + [header]) for i in range(len(header))]

    def line(cols):
        return "  ".join(c.ljust(w) if i in (0, 4, 5) else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cols, widths))).rstrip()

    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))


def markdown_table(rows, header=HEADER):
    md = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    md += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return md


def machine_sentence(meta, load_before, load_after):
    return (f"Measured {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} at commit "
            f"{meta.get('git_commit', '?')} on {meta.get('cpu_model', '?')} "
            f"({meta.get('nproc', '?')} CPUs), kernel {meta.get('kernel', '?')}, "
            f"{meta.get('os', '?')}, spool on {meta.get('spool_fs', '?')}"
            f"{' without a journal' if meta.get('spool_fs_journal') == 'no' else ''}; Postfix "
            f"{meta.get('postfix_version', '?')}; load average {load_before:.2f} before, "
            f"{load_after:.2f} after.")


def parse_meta(items):
    return dict(kv.split("=", 1) for kv in items if "=" in kv)


def write_json(path, data):
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def write_text(path, lines):
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def fmt_kib(v):
    return "-" if v is None else f"{v / 1024:.1f} MiB"


def busy_note(load_before, load_after, other_shares=None, judge=True):
    """One line on how busy the machine was. The load average after a run
    counts the run's own processes waiting on fsync, so it says little about
    other work; the share of CPU time other programs took during the runs
    (when measured) says more."""
    cpus = os.cpu_count() or 1
    note = (f"load: 1-minute load average {load_before:.2f} before, {load_after:.2f} after, "
            f"on {cpus} CPUs")
    if other_shares:
        worst = max(other_shares)
        note += (f"; other programs used {min(other_shares) * 100:.0f}-{worst * 100:.0f}% "
                 "of the CPUs during the runs")
        busy = worst > 0.10
    else:
        busy = load_before > cpus / 2
    if busy and judge:
        note += "; the machine was busy with other work, so the figures are noisy"
    return note
