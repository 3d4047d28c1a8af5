#!/usr/bin/python3
"""Driver of the "dkim" benchmark part (see dkim.sh).

Two modes:

  dkim_driver.py run ...     one run against a gosendmail daemon that dkim.sh
                             has just started with one configuration (no
                             DKIM, RSA-2048 or Ed25519): untimed warm-up,
                             one timed smtp-source run whose messages
                             gosendmail relays to smtp-sink on loopback, then
                             a few sample messages to a second smtp-sink that
                             dumps them, checked for the expected
                             DKIM-Signature; writes the run's record (JSON).
  dkim_driver.py report ...  reads the records of all runs, prints the table
                             and the verdict, writes bench-results/dkim.json
                             and dkim.md.

The timed run reuses the ingest part's code (ingest_driver.run_once with
gosendmail's side in "sink" mode): it returns when smtp-source has exited
and gosendmail's log has one stat=Sent line per message and its queue is
empty. Delivered rate = messages / time from smtp-source's start until then.

Standard library only. Exit status: 0 target met, 3 target missed, 2 a run
failed or signing was not verified (the part is broken: no figures).
"""

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the checkout
import bench_common as bc  # noqa: E402  (after the line above)
import ingest_driver as ing  # noqa: E402

COST_MAX = 0.15  # 1 - signed/unsigned delivered rate, RSA-2048, from the issue
CONFIGS = ("none", "rsa2048", "ed25519")
TITLES = {"none": "no DKIM", "rsa2048": "RSA-2048", "ed25519": "Ed25519"}
ALGORITHM = {"none": None, "rsa2048": "rsa-sha256", "ed25519": "ed25519-sha256"}
SELECTOR = {"none": None, "rsa2048": "rsa2048", "ed25519": "ed"}
VERIFY_RCPT = "rcpt@verify.bench.example"


def header_value(text, name):
    """The unfolded value of the first NAME: header in TEXT's header section,
    or None."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line == "":
            break
        if line.lower().startswith(name.lower() + ":"):
            value = [line[len(name) + 1:]]
            for cont in lines[i + 1:]:
                if cont[:1] in (" ", "\t"):
                    value.append(cont)
                else:
                    break
            return " ".join(v.strip() for v in value)
    return None


def dkim_tags(value):
    tags = {}
    for part in value.split(";"):
        k, sep, v = part.partition("=")
        if sep:
            tags[k.strip()] = "".join(v.split())
    return tags


def verify_samples(args, gsm):
    """Send args.samples messages to the dumping sink and check each one's
    DKIM-Signature against the configuration. Returns a record; raises
    ing.RunFailed when a sample is not as expected."""
    before = set(os.listdir(args.verify_dir))
    sent0 = gsm.log.update()["sent"]
    argv = [args.smtp_source, "-4", "-M", ing.HELO, "-s", "1", "-m", str(args.samples),
            "-l", str(args.size), "-f", ing.SENDER, "-t", VERIFY_RCPT, f"127.0.0.1:{args.port}"]
    out = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=60, cwd="/", check=False)
    if out.returncode != 0:
        raise ing.RunFailed(f"sample messages: `{' '.join(argv)}` exited {out.returncode}: "
                            f"{out.stdout.decode('utf-8', 'replace').strip()}")

    def dumped():
        if gsm.log.update()["sent"] < sent0 + args.samples:
            return False
        new = set(os.listdir(args.verify_dir)) - before
        if len(new) < args.samples:
            return False
        # smtp-sink ends each dumped message with an empty line.
        for name in new:
            with open(os.path.join(args.verify_dir, name), "rb") as f:
                if not f.read().endswith(b"\n\n"):
                    return False
        return True

    ok, _ = ing.wait_until(dumped, 30)
    new = sorted(set(os.listdir(args.verify_dir)) - before)
    if not ok:
        raise ing.RunFailed(f"sample messages: {len(new)} of {args.samples} reached the "
                            "dumping smtp-sink within 30 s")
    want_alg = ALGORITHM[args.config]
    seen = []
    for name in new:
        with open(os.path.join(args.verify_dir, name), encoding="utf-8", errors="replace") as f:
            text = f.read().replace("\r\n", "\n")
        # Skip smtp-sink's own first line (the transaction id) and X- headers:
        # the message as received starts after them, and header_value reads
        # the whole header section anyway.
        sig = header_value(text.split("\n", 1)[1], "DKIM-Signature")
        tags = dkim_tags(sig) if sig else {}
        seen.append({"file": name, "dkim_signature": sig is not None, "a": tags.get("a"),
                     "d": tags.get("d"), "s": tags.get("s"), "bh": bool(tags.get("bh")),
                     "b": bool(tags.get("b"))})
        if want_alg is None:
            if sig is not None:
                raise ing.RunFailed(f"configuration without DKIM, but sample {name} has a "
                                    f"DKIM-Signature: {sig[:120]}")
        elif (sig is None or tags.get("a") != want_alg or tags.get("d") != "bench.example"
              or tags.get("s") != SELECTOR[args.config] or not tags.get("b")
              or not tags.get("bh")):
            raise ing.RunFailed(f"{TITLES[args.config]}: sample {name} is not signed as "
                                f"expected (a={want_alg}, d=bench.example, "
                                f"s={SELECTOR[args.config]}); DKIM-Signature: {sig!r}")
    return {"samples": len(new), "messages": seen}


def cmd_run(args):
    # The namespace ingest_driver's Gosendmail and run_once read.
    ns = argparse.Namespace(
        smtp_source=args.smtp_source, gosendmail_port=args.port, gosendmail_pid=args.pid,
        gosendmail_queue=args.queue, gosendmail_log=args.log, delivery="sink",
        sink_pid=args.sink_pid, sessions=args.sessions, size=args.size, timeout=args.timeout)
    gsm = ing.Gosendmail(ns)
    rec = {"config": args.config, "round": args.round, "position": args.position}
    try:
        if args.warmup:
            rec["warmup"] = ing.run_once(gsm, ns, args.warmup, args.client_pid_file)
        run = ing.run_once(gsm, ns, args.messages, args.client_pid_file)
        run["delivered_rate"] = run["messages"] / run["processed_after_s"]
        rec["run"] = run
        rec["verify"] = verify_samples(args, gsm)
        dkim_lines = [line for line in bc.read_lines(args.log) if "DKIM" in line]
        rec["log_dkim_lines"] = dkim_lines[:20]
        if dkim_lines:
            raise ing.RunFailed(f"gosendmail logged {len(dkim_lines)} lines about DKIM, e.g.: "
                                + dkim_lines[0])
    except ing.RunFailed as e:
        print(f"bench: error: {TITLES[args.config]}: {e}", file=sys.stderr)
        return 2
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(rec, f, indent=2)
    v = rec["verify"]["messages"]
    print(f"  round {args.round}: {TITLES[args.config]:8} delivered {run['delivered_rate']:.0f} "
          f"msg/s ({run['processed_after_s']:.2f} s), accepted {run['rate']:.0f} msg/s; "
          f"samples: {len(v)} "
          + ("unsigned" if ALGORITHM[args.config] is None else f"signed a={v[0]['a']}"),
          file=sys.stderr)
    return 0


def cmd_report(args):
    recs = []
    for path in sorted(glob.glob(os.path.join(args.runs_dir, "run-*.json"))):
        with open(path, encoding="utf-8") as f:
            recs.append(json.load(f))
    by = {c: [r for r in recs if r["config"] == c] for c in CONFIGS}
    missing = [c for c in CONFIGS if not by[c]]
    if missing:
        print(f"bench: error: no runs recorded for {', '.join(missing)}", file=sys.stderr)
        return 2

    def med(c, f):
        return statistics.median(f(r["run"]) for r in by[c])

    deliv = {c: med(c, lambda r: r["delivered_rate"]) for c in CONFIGS}
    accept = {c: med(c, lambda r: r["rate"]) for c in CONFIGS}
    cpu = {c: med(c, lambda r: r["cpu_until_processed_s"] / r["messages"] * 1000) for c in CONFIGS}
    lo = {c: min(r["run"]["delivered_rate"] for r in by[c]) for c in CONFIGS}
    hi = {c: max(r["run"]["delivered_rate"] for r in by[c]) for c in CONFIGS}
    cost = {c: 1 - deliv[c] / deliv["none"] for c in CONFIGS}
    # Paired per round (the configurations of one round ran back to back).
    paired = {c: [] for c in CONFIGS}
    for rnd in sorted({r["round"] for r in recs}):
        base = [r for r in by["none"] if r["round"] == rnd]
        for c in CONFIGS:
            other = [r for r in by[c] if r["round"] == rnd]
            if base and other:
                paired[c].append(1 - other[0]["run"]["delivered_rate"]
                                 / base[0]["run"]["delivered_rate"])
    cost_ok = cost["rsa2048"] <= COST_MAX
    other_shares = [r["run"]["other_cpu_share"] for r in recs]

    def row(figure, f, target="-", verdict="info"):
        return (figure, *(f(c) for c in CONFIGS), target, verdict)

    def pct(v):
        return f"{v * 100:+.1f}%"

    sign_ms = dict((k, float(v)) for k, v in (x.split("=", 1) for x in args.sign_ms))
    meta0 = bc.parse_meta(args.meta)
    try:
        nproc = int(meta0.get("nproc", "0"))
    except ValueError:
        nproc = 0
    # What the target leaves for signing: the machine's CPU per unsigned
    # message (all CPUs busy) times COST_MAX / (1 - COST_MAX).
    budget_ms = (COST_MAX / (1 - COST_MAX) * nproc * 1000 / deliv["none"]) if nproc else 0

    rows = [
        row("delivered rate, median of runs", lambda c: f"{deliv[c]:.0f} msg/s"),
        row("delivered rate, slowest-fastest run", lambda c: f"{lo[c]:.0f}-{hi[c]:.0f} msg/s"),
        row("signing cost: 1 - signed/unsigned (medians)",
            lambda c: "-" if c == "none" else pct(cost[c]),
            f"RSA-2048 <= {COST_MAX * 100:.0f}%", bc.verdict(cost_ok)),
        row("signing cost per round, min-max",
            lambda c: "-" if c == "none" or not paired[c]
            else f"{pct(min(paired[c]))} to {pct(max(paired[c]))}"),
        row("accept rate (smtp-source wall time), median", lambda c: f"{accept[c]:.0f} msg/s"),
        row("daemon CPU per message until delivered",
            lambda c: f"{cpu[c]:.3f} ms"),
        row("CPU per signature of a 2 KiB message (Go, BenchmarkSign)",
            lambda c: f"{sign_ms[c]:.3f} ms" if c in sign_ms else "-"),
        row("one RSA-2048 signature in OpenSSL (openssl speed), for comparison",
            lambda c: f"{args.openssl_rsa2048_ms:.3f} ms" if c == "rsa2048" and args.openssl_rsa2048_ms
            else "-"),
        row("signing budget per message at the target (machine CPU per unsigned message "
            f"x {COST_MAX:.2f}/{1 - COST_MAX:.2f})",
            lambda c: f"{budget_ms:.3f} ms" if c == "none" and budget_ms else "-"),
        row("signatures checked in dumped samples",
            lambda c: (f"{sum(r['verify']['samples'] for r in by[c])} unsigned" if c == "none"
                       else f"{sum(r['verify']['samples'] for r in by[c])} a={ALGORITHM[c]}")),
    ]
    header = ("figure", *(TITLES[c] for c in CONFIGS), "target", "verdict")
    first = recs[0]["run"]
    runs = max(len(by[c]) for c in CONFIGS)
    setup_line = (f"{runs} rounds of the 3 configurations, order rotated each round; each "
                  f"run: daemon started afresh, {args.warmup} "
                  f"untimed messages, then `smtp-source -s {args.sessions} -m "
                  f"{first['messages']} -l {args.size} -f {ing.SENDER}` to gosendmail, "
                  "which relays every message to smtp-sink on loopback; delivered rate = "
                  "messages / time from smtp-source's start until gosendmail logged them all "
                  "stat=Sent and its queue was empty")
    print(setup_line)
    bc.print_table(rows, header)
    checks = [f"{TITLES[c]}: {sum(r['verify']['samples'] for r in by[c])} sample messages "
              "dumped by smtp-sink, " + ("none with a DKIM-Signature" if c == "none" else
                                         f"each with DKIM-Signature a={ALGORITHM[c]} "
                                         f"d=bench.example s={SELECTOR[c]}") for c in CONFIGS]
    checks.append("every run: smtp-source exited 0, gosendmail logged one from= and one "
                  "stat=Sent line per message, queue empty after; no DKIM lines in its log")
    print("checks: " + "; ".join(checks))
    load_before, load_after = args.load_before, bc.loadavg()
    print(bc.busy_note(load_before, load_after, other_shares))
    print(f"verdict: delivered rate {deliv['none']:.0f} msg/s without DKIM, "
          f"{deliv['rsa2048']:.0f} with RSA-2048: cost {cost['rsa2048'] * 100:.1f}% "
          f"(target <= {COST_MAX * 100:.0f}%): {bc.verdict(cost_ok)}; Ed25519 "
          f"{deliv['ed25519']:.0f} msg/s, cost {cost['ed25519'] * 100:.1f}% (info)")
    if budget_ms and "rsa2048" in sign_ms:
        print(f"signing budget at the target: {budget_ms:.3f} ms of CPU per message; one RSA-2048 "
              f"signature costs {sign_ms['rsa2048']:.3f} ms in Go"
              + (f", {args.openssl_rsa2048_ms:.3f} ms in OpenSSL (openssl speed)"
                 if args.openssl_rsa2048_ms else ""))
    print(f"results: {args.json}")

    meta = bc.parse_meta(args.meta)
    bc.write_json(args.json, {
        "benchmark": "dkim",
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": dict(meta, loadavg_before=load_before, loadavg_after=load_after),
        "setup": {"description": setup_line, "sessions": args.sessions,
                  "payload_bytes": args.size, "messages": first["messages"],
                  "rounds": runs, "warmup": args.warmup, "sender": ing.SENDER,
                  "recipient": ing.RECIPIENT, "sample_recipient": VERIFY_RCPT},
        "configs": {c: {"title": TITLES[c], "algorithm": ALGORITHM[c],
                        "delivered_rate_msg_s": {"median": deliv[c], "min": lo[c], "max": hi[c]},
                        "accept_rate_msg_s_median": accept[c],
                        "cpu_ms_per_msg_until_delivered_median": cpu[c],
                        "cost_vs_none": None if c == "none" else cost[c],
                        "cost_vs_none_per_round": None if c == "none" else paired[c],
                        "runs": by[c]} for c in CONFIGS},
        "targets": [{"figure": "RSA-2048 signing cost, 1 - delivered rate signed/unsigned "
                               "(medians)", "value": cost["rsa2048"], "at_most": COST_MAX,
                     "pass": cost_ok}],
        "info": {"ed25519_cost": cost["ed25519"], "sign_cpu_ms": sign_ms,
                 "openssl_rsa2048_sign_ms": args.openssl_rsa2048_ms or None,
                 "signing_budget_ms_per_msg": budget_ms or None},
        "checks": checks,
    })
    bc.write_text(args.markdown, [
        bc.machine_sentence(meta, load_before, load_after) + " gosendmail only. "
        + setup_line + ".",
        "",
        *bc.markdown_table(rows, header),
    ])
    return 0 if cost_ok else 3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("run")
    r.add_argument("--config", choices=CONFIGS, required=True)
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--position", type=int, default=0)
    r.add_argument("--smtp-source", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--queue", required=True)
    r.add_argument("--log", required=True)
    r.add_argument("--sink-pid", type=int, default=0)
    r.add_argument("--verify-dir", required=True)
    r.add_argument("--samples", type=int, default=3)
    r.add_argument("--messages", type=int, default=5000)
    r.add_argument("--sessions", type=int, default=20)
    r.add_argument("--size", type=int, default=2048)
    r.add_argument("--warmup", type=int, default=500)
    r.add_argument("--timeout", type=float, default=600)
    r.add_argument("--client-pid-file", required=True)
    r.add_argument("--out", required=True)
    p = sub.add_parser("report")
    p.add_argument("--runs-dir", required=True)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--load-before", type=float, required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--markdown", required=True)
    p.add_argument("--meta", action="append", default=[])
    p.add_argument("--sign-ms", action="append", default=[],
                   help="CONFIG=MS: CPU per signature of a 2 KiB message (BenchmarkSign)")
    p.add_argument("--openssl-rsa2048-ms", type=float, default=0,
                   help="one RSA-2048 signature in `openssl speed`, for comparison")
    args = ap.parse_args()
    if args.mode == "run":
        if args.messages < 1 or args.sessions < 1 or args.warmup < 0 or args.samples < 1:
            ap.error("need messages, sessions, samples >= 1 and warmup >= 0")
        return cmd_run(args)
    return cmd_report(args)


if __name__ == "__main__":
    sys.exit(main())
