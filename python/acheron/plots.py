"""Plots of photon-service hits: a PMT hit map and a hit-time histogram.

    /usr/bin/python3 -m acheron.plots HITS.npy DETINFO.npy OUTDIR

HITS.npy holds records of acheron.photon.HIT_DTYPE (as `acheron photon
simulate --out` and `acheron demo` write them); DETINFO.npy is a (C, 4)
float32 array of channel x, y, z (mm) and type. Writes hit_map.png and
hit_times.png into OUTDIR and prints their paths.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def hit_map(hits: np.ndarray, detinfo: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xyz = detinfo[:, :3].astype(float)
    counts = np.bincount(hits["channel"], minlength=len(xyz))[: len(xyz)]
    r = np.linalg.norm(xyz, axis=1)
    r[r == 0] = 1
    lon = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    lat = np.degrees(np.arcsin(np.clip(xyz[:, 2] / r, -1, 1)))
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    sc = ax.scatter(lon, lat, c=counts, s=28, cmap="viridis", edgecolors="none")
    fig.colorbar(sc, ax=ax, label="hits per PMT")
    ax.set_xlabel("azimuth (deg)")
    ax.set_ylabel("elevation (deg)")
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_title(f"PMT hit map: {len(hits)} hits on {np.count_nonzero(counts)} of {len(xyz)} PMTs")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def hit_times(hits: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    t = hits["time"]
    if len(t):
        hi = np.percentile(t, 99.5)
        ax.hist(t, bins=120, range=(0, max(hi, 1e-3)), color="tab:blue")
    ax.set_xlabel("hit time (ns)")
    ax.set_ylabel("hits per bin")
    ax.set_title("hit-time distribution")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    hits = np.load(argv[1])
    detinfo = np.load(argv[2])
    out = Path(argv[3])
    out.mkdir(parents=True, exist_ok=True)
    hit_map(hits, detinfo, out / "hit_map.png")
    hit_times(hits, out / "hit_times.png")
    print(out / "hit_map.png")
    print(out / "hit_times.png")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
