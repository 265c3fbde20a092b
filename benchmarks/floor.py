"""The floor for `podctl plan`: a stdlib script that fetches the account's pods once, parsed.

Run: `python benchmarks/floor.py QUERY_FILE` with RUNPOD_API_BASE_URL and RUNPOD_API_KEY set
(benchmarks.pods writes podctl's own list query to QUERY_FILE). It imports nothing of podctl
and nothing outside the standard library: no plan can read the account in less, so plan
times are reported as multiples of this one. Prints the number of pods.
"""

import json
import os
import sys
import urllib.request


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as fh:
        query = fh.read()
    request = urllib.request.Request(
        os.environ["RUNPOD_API_BASE_URL"].rstrip("/") + "/graphql",
        data=json.dumps({"query": query, "variables": {}}).encode(),
        headers={
            "Authorization": "Bearer " + os.environ["RUNPOD_API_KEY"],
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        pods = json.loads(response.read())["data"]["myself"]["pods"]
    print(len(pods))
    return 0


if __name__ == "__main__":
    sys.exit(main())
