#!/usr/bin/python3
"""Copy one benchmark part's Markdown summary into docs/benchmarks.md.

    update_docs.py PART SUMMARY.md DOC.md

The summary replaces whatever stands between the lines
`<!-- bench:PART:begin -->` and `<!-- bench:PART:end -->` in DOC.md; the rest
of the document is left as it is. Standard library only.
"""

import os
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__.strip())
    part, summary_path, doc_path = sys.argv[1:]
    begin, end = f"<!-- bench:{part}:begin -->", f"<!-- bench:{part}:end -->"
    with open(summary_path, encoding="utf-8") as f:
        summary = f.read().strip("\n")
    with open(doc_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    try:
        i = next(n for n, l in enumerate(lines) if l.strip() == begin)
        j = next(n for n, l in enumerate(lines) if n > i and l.strip() == end)
    except StopIteration:
        sys.exit(f"update_docs: {doc_path} has no {begin} ... {end} section")
    lines[i + 1:j] = summary.split("\n")
    tmp = doc_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    os.replace(tmp, doc_path)
    print(f"bench: {doc_path}: updated the {part} results", file=sys.stderr)


if __name__ == "__main__":
    main()
