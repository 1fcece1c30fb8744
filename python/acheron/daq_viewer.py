"""Live viewer for a DaqData server: the newest movie-mode image of one
module and a histogram of the pulse heights received so far.

    python -m acheron.daq_viewer unix:///tmp/daq_data.sock --module 224

(with the Python the package is installed into, docs/python.md).

With ``--save out.png --images N`` it runs without a display, stops after N
images and writes the figure (for scripts and tests).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .daq import DaqDataClient


class DaqViewer:
    """Holds the figure state; feed it parsed images with update()."""

    def __init__(self, module_id=None, bins: int = 128, ph_range=(-200, 4000)):
        import matplotlib.pyplot as plt
        self.plt = plt
        self.module_id = module_id
        self.fig, (self.ax_img, self.ax_ph) = plt.subplots(1, 2, figsize=(11, 4.5))
        self.edges = np.linspace(ph_range[0], ph_range[1], bins + 1)
        self.counts = np.zeros(bins, dtype=np.int64)
        self.image = None
        self.images = 0
        self.ph_images = 0
        self.ax_img.set_title("movie mode: waiting for images")
        self.ax_ph.set_title("pulse heights")
        self.ax_ph.set_xlabel("pulse height (ADC)")
        self.ax_ph.set_ylabel("pixels")
        self.bars = self.ax_ph.stairs(self.counts, self.edges, fill=True)
        self.fig.tight_layout()

    def update(self, image) -> None:
        if self.module_id is not None and image["module_id"] != self.module_id:
            return
        self.images += 1
        array = image["image_array"]
        if image["type"] == "MOVIE":
            title = (f"module {image['module_id']} {image['file']} "
                     f"frame {image['frame_number']}")
            if self.image is None or self.image.get_array().shape != array.shape:
                self.ax_img.clear()
                self.image = self.ax_img.imshow(array, cmap="viridis", origin="lower")
                self.fig.colorbar(self.image, ax=self.ax_img, fraction=0.046)
            else:
                self.image.set_data(array)
                self.image.set_clim(array.min(), max(array.max(), array.min() + 1))
            self.ax_img.set_title(title, fontsize=9)
        elif image["type"] == "PULSE_HEIGHT":
            self.ph_images += 1
            self.counts += np.histogram(array.astype(np.int64), bins=self.edges)[0]
            self.bars.set_data(self.counts, self.edges)
            self.ax_ph.set_ylim(0, max(1, self.counts.max()) * 1.1)
            self.ax_ph.set_title(f"pulse heights ({self.ph_images} images)")

    def save(self, path) -> None:
        self.fig.savefig(path, dpi=90)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="acheron.daq_viewer", description=__doc__.split("\n")[0])
    p.add_argument("--connect", dest="host",
                   help="the server: unix:///tmp/daq_data.sock, HOST:PORT or HOST (required)")
    # The old spelling, the server as the positional argument, still works.
    p.add_argument("old_host", nargs="?", help=argparse.SUPPRESS)
    p.add_argument("--module", type=int, help="module id to show (default: any)")
    p.add_argument("--interval", type=float, default=0.1, help="update interval, seconds")
    p.add_argument("--save", help="write the figure here and exit (no display)")
    p.add_argument("--images", type=int, default=100, help="with --save: images to collect")
    args = p.parse_args(argv)
    if args.old_host is not None:
        if args.host is None:
            print(f"acheron.daq_viewer: warning: the server as a positional argument is "
                  f"deprecated and will be removed; use --connect {args.old_host}", file=sys.stderr)
            args.host = args.old_host
        else:
            p.error(f"unexpected argument {args.old_host!r} (the server is given by --connect)")
    if args.host is None:
        p.error("the server is required: --connect unix:///PATH, HOST:PORT or HOST")
    if args.save:
        import matplotlib
        matplotlib.use("Agg")
    viewer = DaqViewer(args.module)
    modules = [args.module] if args.module is not None else []
    with DaqDataClient(args.host) as client:
        if not client.ping(timeout=2.0):
            print(f"no answer from {args.host}", file=sys.stderr)
            return 3
        stream = client.stream_images(update_interval_seconds=args.interval, module_ids=modules,
                                      max_images=args.images if args.save else None)
        if args.save:
            for image in stream:
                viewer.update(image)
            viewer.save(args.save)
            print(f"{viewer.images} images, {viewer.ph_images} pulse-height; wrote {args.save}")
            return 0
        viewer.plt.ion()
        viewer.plt.show()
        last = 0.0
        try:
            for image in stream:
                viewer.update(image)
                now = time.monotonic()
                if now - last > 0.05:
                    viewer.fig.canvas.draw_idle()
                    viewer.plt.pause(0.001)
                    last = now
                if not viewer.plt.fignum_exists(viewer.fig.number):
                    break
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
