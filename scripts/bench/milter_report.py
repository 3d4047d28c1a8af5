#!/usr/bin/env python3
"""The milter part's verdict: milter_report.py RESULTS_DIR ROUNDS

Reads milter-{none,eom,all}-ROUND.json (the ingest driver's results
without a milter, and with one no-op milter answering only the end of
each message or every step, one run each per round) and writes
milter.json and milter.md with the costs: the median over the rounds of
1 - delivered rate with / without in that round (each round's runs are
neighbours in time, so a machine getting busier or quieter weighs on both
sides of a ratio alike). The verdict is on the milter that answers the end
of the message; the other is reported beside it.
"""
import json
import os
import statistics
import sys

sys.dont_write_bytecode = True
TARGET = 0.25  # from the project's milter issue


def rates(d, name, rounds):
    out = []
    for r in range(1, rounds + 1):
        with open(os.path.join(d, f"{name}-{r}.json"), encoding="utf-8") as f:
            out.append(json.load(f)["gosendmail"]["delivered_msg_s_median"])
    return out


def main():
    d, rounds = sys.argv[1], int(sys.argv[2])
    r_none, r_eom, r_all = (rates(d, f"milter-{m}", rounds) for m in ("none", "eom", "all"))
    none, eom, every = (statistics.median(r) for r in (r_none, r_eom, r_all))
    cost = statistics.median(1 - w / n for w, n in zip(r_eom, r_none))
    cost_all = statistics.median(1 - w / n for w, n in zip(r_all, r_none))
    ok = cost <= TARGET
    verdict = "PASS" if ok else "FAIL"
    print(f"verdict: delivered rate without a milter {none:.0f} msg/s, with one no-op milter "
          f"answering the end of each message {eom:.0f} msg/s: cost {cost * 100:+.1f}% "
          f"(target <= {TARGET * 100:.0f}%): {verdict}; answering every step {every:.0f} msg/s: "
          f"cost {cost_all * 100:+.1f}% (reported)")
    with open(os.path.join(d, "milter.json"), "w", encoding="utf-8") as f:
        json.dump({"benchmark": "milter",
                   "delivered_msg_s": {"none": none, "noop_eom": eom, "noop_all_steps": every},
                   "rounds": {"none": r_none, "noop_eom": r_eom, "noop_all_steps": r_all},
                   "cost_all_steps": cost_all,
                   "targets": [{"figure": "no-op libmilter milter answering at end of message, cost (1 - delivered rate with/without)",
                                "value": cost, "at_most": TARGET, "pass": ok}]}, f, indent=1)
        f.write("\n")
    with open(os.path.join(d, "milter.md"), "w", encoding="utf-8") as f:
        f.write("| figure (medians; cost: median of the rounds' costs) | without | with one no-op milter "
                "| cost | target | verdict |\n")
        f.write("|---|---|---|---|---|---|\n")
        f.write(f"| delivered rate, milter answering the end of each message (rspamd's way) | "
                f"{none:.0f} msg/s | {eom:.0f} msg/s | {cost * 100:+.1f}% | "
                f"<= {TARGET * 100:.0f}% | {verdict} |\n")
        f.write(f"| delivered rate, milter answering every step (opendkim's way) | "
                f"{none:.0f} msg/s | {every:.0f} msg/s | {cost_all * 100:+.1f}% | - | reported |\n")


if __name__ == "__main__":
    main()
