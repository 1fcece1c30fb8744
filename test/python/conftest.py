import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))


def build_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("ACHERON_BUILD_DIR", ROOT / "build" / "default"))
