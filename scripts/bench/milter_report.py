#!/usr/bin/env python3
"""The milter part's verdict: milter_report.py RESULTS_DIR ROUNDS

Reads milter-{none,eom,all}-ROUND.json (the ingest driver's results
without a milter, and with one no-op milter answering only the end of
each message or every step, one run each per round) and writes
milter.json and milter.md with the costs: 1 - median delivered rate with /
median without. The verdict is on the milter that answers the end of the
message; the other is reported beside it.
"""
import json
import os
import statistics
import sys

sys.dont_write_bytecode = True
TARGET = 0.25  # from the project's milter issue


def rate(d, name, rounds):
    rates = []
    for r in range(1, rounds + 1):
        with open(os.path.join(d, f"{name}-{r}.json"), encoding="utf-8") as f:
            rates.append(json.load(f)["gosendmail"]["delivered_msg_s_median"])
    return statistics.median(rates)


def main():
    d, rounds = sys.argv[1], int(sys.argv[2])
    none, eom, every = (rate(d, f"milter-{m}", rounds) for m in ("none", "eom", "all"))
    cost, cost_all = 1 - eom / none, 1 - every / none
    ok = cost <= TARGET
    verdict = "PASS" if ok else "FAIL"
    print(f"verdict: delivered rate without a milter {none:.0f} msg/s, with one no-op milter "
          f"answering the end of each message {eom:.0f} msg/s: cost {cost * 100:+.1f}% "
          f"(target <= {TARGET * 100:.0f}%): {verdict}; answering every step {every:.0f} msg/s: "
          f"cost {cost_all * 100:+.1f}% (reported)")
    with open(os.path.join(d, "milter.json"), "w", encoding="utf-8") as f:
        json.dump({"benchmark": "milter",
                   "delivered_msg_s": {"none": none, "noop_eom": eom, "noop_all_steps": every},
                   "cost_all_steps": cost_all,
                   "targets": [{"figure": "no-op libmilter milter answering at end of message, cost (1 - delivered rate with/without)",
                                "value": cost, "at_most": TARGET, "pass": ok}]}, f, indent=1)
        f.write("\n")
    with open(os.path.join(d, "milter.md"), "w", encoding="utf-8") as f:
        f.write("| figure | without | with one no-op milter | cost | target | verdict |\n")
        f.write("|---|---|---|---|---|---|\n")
        f.write(f"| delivered rate, milter answering the end of each message (rspamd's way) | "
                f"{none:.0f} msg/s | {eom:.0f} msg/s | {cost * 100:+.1f}% | "
                f"<= {TARGET * 100:.0f}% | {verdict} |\n")
        f.write(f"| delivered rate, milter answering every step (opendkim's way) | "
                f"{none:.0f} msg/s | {every:.0f} msg/s | {cost_all * 100:+.1f}% | - | reported |\n")


if __name__ == "__main__":
    main()
