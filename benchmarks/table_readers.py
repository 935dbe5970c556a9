"""Table loading: vaekit's readers against the reader library called directly, side by side.

A float table (default 1,000,000 x 76) is written as CSV, HDF5 and Parquet; each reader runs in
a fresh subprocess (so peak memory is its own), alternating vaekit and the library, `--repeats`
times. Printed: median seconds, vaekit / library time, and peak resident memory over the float64
array's size.

    python benchmarks/table_readers.py [--rows 1000000] [--cols 76] [--repeats 3] [--dir /tmp/tables]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

READERS = {
    "csv": {
        "library": "import pandas as pd; x = pd.read_csv(PATH, engine='c').to_numpy(np.float64)",
        "vaekit": "from vaekit import datasets; x = datasets.read_raw(PATH).x",
    },
    "h5": {
        "library": "import h5py; f = h5py.File(PATH); x = f['table'][()]",
        "vaekit": "from vaekit import datasets; x = datasets.read_raw(PATH, keys={'table': 'table'}).x",
    },
    "parquet": {
        "library": "import pyarrow.parquet as pq; t = pq.read_table(PATH); "
        "x = np.column_stack([c.to_numpy() for c in t.columns])",
        "vaekit": "from vaekit import datasets; x = datasets.read_raw(PATH).x",
    },
}

CHILD = """
import json, resource, sys, time
import numpy as np
PATH = sys.argv[1]
{imports}
t0 = time.perf_counter()
{code}
seconds = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"seconds": seconds, "peak": peak, "shape": list(x.shape), "sum": float(x.sum())}}))
"""


def write_tables(folder: Path, rows: int, cols: int) -> dict:
    import h5py
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"csv": folder / "t.csv", "h5": folder / "t.h5", "parquet": folder / "t.parquet"}
    if all(p.exists() for p in paths.values()):
        return paths
    gen = np.random.default_rng(0)
    x = gen.normal(size=(rows, cols))
    names = [f"f{j}" for j in range(cols)]
    pd.DataFrame(x, columns=names).to_csv(paths["csv"], index=False)
    with h5py.File(paths["h5"], "w") as f:
        f["table"] = x
    pq.write_table(pa.table({n: x[:, j] for j, n in enumerate(names)}), paths["parquet"])
    return paths


def run_child(kind: str, who: str, path: Path) -> dict:
    code = READERS[kind][who]
    # import the packages before the clock starts, for both sides alike
    imports = "import pandas, h5py, pyarrow.parquet\nfrom vaekit import datasets"
    script = CHILD.format(imports=imports, code=code)
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cols", type=int, default=76)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default="/tmp/tables")
    args = parser.parse_args()
    paths = write_tables(Path(args.dir), args.rows, args.cols)
    array_bytes = args.rows * args.cols * 8
    print(f"{args.rows:,} x {args.cols} float64 table = {array_bytes / 2**20:.0f} MiB")
    print(
        f"{'format':8} {'library s':>10} {'vaekit s':>10} {'ratio':>6} "
        f"{'lib peak/array':>15} {'vaekit peak/array':>18}"
    )
    for kind, path in paths.items():
        times = {"library": [], "vaekit": []}
        peaks = {"library": [], "vaekit": []}
        sums = set()
        for _ in range(args.repeats):
            for who in ("library", "vaekit"):
                r = run_child(kind, who, path)
                times[who].append(r["seconds"])
                peaks[who].append(r["peak"])
                sums.add(round(r["sum"], 3))
        lib, vk = statistics.median(times["library"]), statistics.median(times["vaekit"])
        print(
            f"{kind:8} {lib:10.2f} {vk:10.2f} {vk / lib:6.2f} {max(peaks['library']) / array_bytes:15.2f} "
            f"{max(peaks['vaekit']) / array_bytes:18.2f}" + ("" if len(sums) == 1 else "  VALUES DIFFER")
        )


if __name__ == "__main__":
    main()
