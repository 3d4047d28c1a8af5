#!/usr/bin/env python3
"""The milter part's verdict: milter_report.py RESULTS_DIR

Reads milter-none.json and milter-noop.json (the ingest driver's results
without a milter and with one no-op milter) and writes milter.json and
milter.md with the cost: 1 - delivered rate with / without.
"""
import json
import os
import sys

sys.dont_write_bytecode = True
TARGET = 0.25  # from the project's milter issue


def rate(d, name):
    with open(os.path.join(d, name + ".json"), encoding="utf-8") as f:
        return json.load(f)["gosendmail"]["delivered_msg_s_median"]


def main():
    d = sys.argv[1]
    none, noop = rate(d, "milter-none"), rate(d, "milter-noop")
    cost = 1 - noop / none
    ok = cost <= TARGET
    verdict = "PASS" if ok else "FAIL"
    print(f"verdict: delivered rate without a milter {none:.0f} msg/s, with one no-op milter "
          f"{noop:.0f} msg/s: cost {cost * 100:+.1f}% (target <= {TARGET * 100:.0f}%): {verdict}")
    with open(os.path.join(d, "milter.json"), "w", encoding="utf-8") as f:
        json.dump({"benchmark": "milter", "delivered_msg_s": {"none": none, "noop": noop},
                   "targets": [{"figure": "no-op milter cost, 1 - delivered rate with/without",
                                "value": cost, "at_most": TARGET, "pass": ok}]}, f, indent=1)
        f.write("\n")
    with open(os.path.join(d, "milter.md"), "w", encoding="utf-8") as f:
        f.write("| figure | without | with one no-op milter | cost | target | verdict |\n")
        f.write("|---|---|---|---|---|---|\n")
        f.write(f"| end-to-end delivered rate, median | {none:.0f} msg/s | {noop:.0f} msg/s | "
                f"{cost * 100:+.1f}% | <= {TARGET * 100:.0f}% | {verdict} |\n")


if __name__ == "__main__":
    main()
