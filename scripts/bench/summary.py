#!/usr/bin/env python3
"""Summarise bench-results/*.json into one table for the README.

    summary.py RESULTS_DIR [README.md]

Prints a Markdown table (figure, gosendmail, Postfix, ratio, target,
verdict) built from the parts' JSON files, with the machine it ran on, and
with README.md given, replaces what lies between
<!-- bench:summary:begin --> and <!-- bench:summary:end --> there. Parts
without a result file are left out; nothing is invented.
"""
import json
import os
import sys

sys.dont_write_bytecode = True


def load(d, part):
    try:
        with open(os.path.join(d, part + ".json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def verdict(p):
    return {True: "PASS", False: "FAIL"}.get(p, "info")


def target_of(t):
    for k, sym in (("at_least", ">="), ("at_most", "<="), ("below", "<"), ("want", "=")):
        if k in t:
            return f"{sym} {t[k]:g}" if isinstance(t[k], (int, float)) else f"{sym} {t[k]}"
    return "-"


def main():
    d = sys.argv[1]
    rows, machine = [], None

    def row(fig, g, p, ratio, target, v):
        rows.append((fig, g, p, ratio, target, v))

    sub = load(d, "submit")
    if sub:
        machine = machine or sub.get("machine")
        g, p, r = sub["gosendmail"], sub["postfix"], sub["ratios"]
        t = {x["figure"]: x for x in sub["targets"]}
        row("local submission, `sendmail -t -i`, median latency", f"{g['latency_ms']['median']:.2f} ms",
            f"{p['latency_ms']['median']:.2f} ms", f"{r['median_latency']:.2f}", "<= 0.5",
            verdict(t.get("median latency ratio gosendmail/Postfix", {}).get("pass")))
        row("local submission, p99 latency", f"{g['latency_ms']['p99']:.2f} ms",
            f"{p['latency_ms']['p99']:.2f} ms", f"{r['p99_latency']:.2f}", "-", "info")
    for part, label in (("ingest", "SMTP ingest (discard)"), ("e2e", "end to end through smtp-sink")):
        x = load(d, part)
        if not x or not x.get("gosendmail") or not x.get("postfix"):
            continue
        machine = machine or x.get("machine")
        g, p = x["gosendmail"], x["postfix"]
        t = {y["figure"]: y for y in x["targets"]}
        acc = t.get("accept rate ratio gosendmail/Postfix (medians)", {})
        row(f"{label}: accept rate", f"{g['rate_msg_s']['median']:.0f} msg/s",
            f"{p['rate_msg_s']['median']:.0f} msg/s", f"{x['ratios']['accept_rate']:.2f}",
            ">= 2" if part == "ingest" else "-", verdict(acc.get("pass")) if part == "ingest" else "info")
        if part == "e2e":
            dl = t.get("delivered rate ratio gosendmail/Postfix (medians)", {})
            mem = t.get("peak memory ratio gosendmail VmHWM / Postfix PSS sum", {})
            if g.get("delivered_msg_s_median") and p.get("delivered_msg_s_median"):
                row(f"{label}: delivered rate", f"{g['delivered_msg_s_median']:.0f} msg/s",
                    f"{p['delivered_msg_s_median']:.0f} msg/s", f"{dl.get('value', 0):.2f}", ">= 2",
                    verdict(dl.get("pass")))
            if "value" in mem:
                row(f"{label}: peak memory (gosendmail VmHWM, Postfix PSS sum)",
                    f"{max(r['vm_hwm_kib'] for r in g['runs']) / 1024:.1f} MiB",
                    f"{p['memory_end_pss_kib_max'] / 1024:.1f} MiB", f"{mem['value']:.2f}", "<= 0.5",
                    verdict(mem.get("pass")))
    ceil = load(d, "ceiling")
    if ceil:
        row("ceiling: smtp-source straight into smtp-sink", f"{ceil['median_msg_s']:.0f} msg/s", "-", "-", "-", "info")
    for part in ("dkim", "milter", "idle", "bigqueue"):
        x = load(d, part)
        if not x:
            continue
        machine = machine or x.get("machine")
        for t in x.get("targets", []):
            v = t.get("value")
            shown = f"{v:.3g}" if isinstance(v, float) else str(v)
            row(f"{part}: {t['figure']}", shown, "-", "-", target_of(t), verdict(t.get("pass")))

    out = []
    if machine:
        out.append(f"Measured on {machine.get('nproc', '?')} × {machine.get('cpu_model', '?')}, "
                   f"{machine.get('os', '?')}, kernel {machine.get('kernel', '?')}, spool on "
                   f"{machine.get('spool_fs', '?')} (journal: {machine.get('spool_fs_journal', '?')}), "
                   f"Postfix {machine.get('postfix_version', '?')}, {machine.get('go_version', '?')}, "
                   f"commit {machine.get('git_commit', '?')}. Ratios are gosendmail / Postfix in the "
                   "same run; details in docs/benchmarks.md.")
        out.append("")
    out.append("| figure | gosendmail | Postfix | ratio | target | verdict |")
    out.append("|---|---|---|---|---|---|")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    text = "\n".join(out) + "\n"
    print(text, end="")
    if len(sys.argv) > 2:
        path = sys.argv[2]
        with open(path, encoding="utf-8") as f:
            doc = f.read()
        begin, end = "<!-- bench:summary:begin -->", "<!-- bench:summary:end -->"
        if begin not in doc or end not in doc:
            sys.exit(f"summary: {path} has no {begin} ... {end} section")
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        with open(path, "w", encoding="utf-8") as f:
            f.write(head + begin + "\n" + text + end + tail)


if __name__ == "__main__":
    main()
