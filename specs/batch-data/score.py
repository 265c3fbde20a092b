"""Example input for specs/batch.yaml: scores the prepared data set."""

import argparse
import os
import pathlib

parser = argparse.ArgumentParser()
parser.add_argument("--in", dest="source", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
items = pathlib.Path(args.source, "items.txt").read_text().split()
out = pathlib.Path(args.out)
out.mkdir(parents=True, exist_ok=True)
batch = int(os.environ.get("BATCH_SIZE", "1"))
(out / "score.txt").write_text(f"{sum(int(i) for i in items)} in batches of {batch}\n")
