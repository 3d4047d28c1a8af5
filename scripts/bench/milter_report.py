#!/usr/bin/env python3
"""The milter part's verdict: milter_report.py RESULTS_DIR ROUNDS

Reads milter-{none,eom,accept,all}-ROUND.json (the ingest driver's results
without a milter, and with one no-op milter answering only the end of each
message with "continue", the same answering "accept", and one answering
every step; one run each per round) and writes milter.json and milter.md
with the costs: the median over the rounds of 1 - delivered rate with /
without in that round (each round's runs are neighbours in time, so a
machine getting busier or quieter weighs on both sides of a ratio alike).
The verdict is on the milter answering "continue" at the end of the
message; the others are reported beside it.
"""
import json
import os
import statistics
import sys

sys.dont_write_bytecode = True
TARGET = 0.25  # from the project's milter issue

# mode: (key in milter.json, how the milter answers)
MODES = {
    "eom": ("noop_eom", "the end of each message only, with continue"),
    "accept": ("noop_eom_accept", "the end of each message only, with accept (as rspamd and opendkim answer there)"),
    "all": ("noop_all_steps", "every step, with continue (one round trip per step, as opendkim asks)"),
}


def rates(d, name, rounds):
    out = []
    for r in range(1, rounds + 1):
        with open(os.path.join(d, f"{name}-{r}.json"), encoding="utf-8") as f:
            out.append(json.load(f)["gosendmail"]["delivered_msg_s_median"])
    return out


def main():
    d, rounds = sys.argv[1], int(sys.argv[2])
    r_none = rates(d, "milter-none", rounds)
    none = statistics.median(r_none)
    runs = {m: rates(d, f"milter-{m}", rounds) for m in MODES}
    rate = {m: statistics.median(r) for m, r in runs.items()}
    cost = {m: statistics.median(1 - w / n for w, n in zip(r, r_none)) for m, r in runs.items()}
    ok = cost["eom"] <= TARGET
    verdict = "PASS" if ok else "FAIL"
    print(f"verdict: delivered rate without a milter {none:.0f} msg/s, with one no-op milter "
          f"answering {MODES['eom'][1]} {rate['eom']:.0f} msg/s: cost {cost['eom'] * 100:+.1f}% "
          f"(target <= {TARGET * 100:.0f}%): {verdict}; reported: "
          + "; ".join(f"answering {MODES[m][1]} {rate[m]:.0f} msg/s, cost {cost[m] * 100:+.1f}%"
                      for m in ("accept", "all")))
    with open(os.path.join(d, "milter.json"), "w", encoding="utf-8") as f:
        json.dump({"benchmark": "milter",
                   "delivered_msg_s": {"none": none, **{MODES[m][0]: rate[m] for m in MODES}},
                   "rounds": {"none": r_none, **{MODES[m][0]: runs[m] for m in MODES}},
                   "cost_eom_accept": cost["accept"],
                   "cost_all_steps": cost["all"],
                   "targets": [{"figure": "no-op libmilter milter answering only the end of the message (continue), cost (1 - delivered rate with/without)",
                                "value": cost["eom"], "at_most": TARGET, "pass": ok}]}, f, indent=1)
        f.write("\n")
    with open(os.path.join(d, "milter.md"), "w", encoding="utf-8") as f:
        f.write("| figure (medians; cost: median of the rounds' costs) | without | with one no-op milter "
                "| cost | target | verdict |\n")
        f.write("|---|---|---|---|---|---|\n")
        for m in MODES:
            target, v = (f"<= {TARGET * 100:.0f}%", verdict) if m == "eom" else ("-", "reported")
            f.write(f"| delivered rate, milter answering {MODES[m][1]} | {none:.0f} msg/s | "
                    f"{rate[m]:.0f} msg/s | {cost[m] * 100:+.1f}% | {target} | {v} |\n")


if __name__ == "__main__":
    main()
