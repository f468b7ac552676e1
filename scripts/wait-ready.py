"""Wait until every URL given answers 200, then exit 0; exit 1 after the deadline.

Used by scripts/run.sh to say "ready" once the ingress and the worker both are.
Usage: wait-ready.py [--timeout SECONDS] URL...
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own local URLs
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    waiting = list(args.urls)
    while waiting and time.monotonic() < deadline:
        waiting = [url for url in waiting if not answers(url)]
        if waiting:
            time.sleep(0.5)
    return 0 if not waiting else 1


if __name__ == "__main__":
    sys.exit(main())
