"""Summarizes Autobahn fuzzingclient reports (index.json) for scripts/autobahn.

usage: summarize.py SUITE_INDEX LIMIT_INDEX COMPRESSION_INDEX OUT_JSON

Writes the case counts by behaviour (what is committed as
tests/autobahn/summary.json) and exits 1 with the reasons when:
- a case of the suite run (cases 1-10) FAILED, or fewer cases ran than the
  suite has;
- a case of the limit run (messages over the default limit) was not closed
  by the server with 1009;
- compression (cases 12 and 13) was negotiated: rt offers none.
Durations are left out: they vary from run to run.
"""

import json
import sys
from collections import Counter

# Cases 1-10 of the Autobahn case files (there is no case 8).
SUITE_CASES = 301


def load(path):
    with open(path) as f:
        index = json.load(f)
    if len(index) != 1:
        sys.exit(f"{path}: expected one agent, found {len(index)}")
    (cases,) = index.values()
    return cases


def order(case_id):
    return [int(part) for part in case_id.split(".")]


def counts(cases, key):
    return dict(sorted(Counter(c[key] for c in cases.values()).items()))


def main():
    suite_path, limit_path, compression_path, out_path = sys.argv[1:5]
    suite = load(suite_path)
    limit = load(limit_path)
    compression = load(compression_path)
    problems = []

    if len(suite) < SUITE_CASES:
        problems.append(f"the suite ran {len(suite)} cases, expected {SUITE_CASES}")
    failed = sorted(
        (k for k, c in suite.items() if "FAILED" in (c["behavior"], c["behaviorClose"])),
        key=order,
    )
    if failed:
        problems.append(f"FAILED cases in 1-10: {', '.join(failed)}")
    not_1009 = sorted(
        (k for k, c in limit.items() if c.get("remoteCloseCode") != 1009), key=order
    )
    if not_1009:
        problems.append(f"over the message limit but not closed with 1009: {', '.join(not_1009)}")
    negotiated = sorted(
        (k for k, c in compression.items() if c["behavior"] != "UNIMPLEMENTED"), key=order
    )
    if negotiated:
        problems.append(f"compression cases not UNIMPLEMENTED: {', '.join(negotiated)}")

    summary = {
        "suite": {
            "what": "cases 1-10 against ws_echo --doc-max-frame-bytes 8388608 "
            "(editor settings, limit raised so that case 9's 16 MiB messages fit)",
            "cases": len(suite),
            "behavior": counts(suite, "behavior"),
            "behaviorClose": counts(suite, "behaviorClose"),
            "not_ok": {
                k: [suite[k]["behavior"], suite[k]["behaviorClose"]]
                for k in sorted(suite, key=order)
                if (suite[k]["behavior"], suite[k]["behaviorClose"]) != ("OK", "OK")
            },
        },
        "limit": {
            "what": "case 9 messages over 2 MiB against ws_echo with the default "
            "--doc-max-frame-bytes (1 MiB; messages up to twice that are read)",
            "cases": len(limit),
            "server_close_codes": dict(
                sorted(Counter(str(c.get("remoteCloseCode")) for c in limit.values()).items())
            ),
        },
        "compression": {
            "what": "cases 12.1.1 and 13.1.1 (permessage-deflate): rt offers no "
            "compression, so cases 12-13 do not apply",
            "behavior": {k: compression[k]["behavior"] for k in sorted(compression, key=order)},
        },
    }
    with open(out_path, "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
        f.write("\n")
    if problems:
        for p in problems:
            print(f"autobahn: {p}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
