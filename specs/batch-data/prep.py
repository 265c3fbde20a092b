"""Example input for specs/batch.yaml: writes a tiny prepared data set."""

import argparse
import pathlib

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
out = pathlib.Path(parser.parse_args().out)
out.mkdir(parents=True, exist_ok=True)
(out / "items.txt").write_text("\n".join(str(n) for n in range(100)) + "\n")
