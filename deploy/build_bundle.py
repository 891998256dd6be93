"""Build the single-file agent: a zipapp holding only the `agent` package.

Runs with any Python 3.11+ that can import psutil and paho-mqtt 2.x:
    python3 dunewatch-agent.pyz once --json

example: python3 deploy/build_bundle.py --output dist/dunewatch-agent.pyz
"""

from __future__ import annotations

import argparse
import compileall
import py_compile
import shutil
import sys
import tempfile
import zipapp
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKIP_DIRS = {"__pycache__"}
SKIP_SUFFIXES = {".pyc", ".pyo"}


def build(
    output: Path, source: Path = REPO / "agent", python: str = "/usr/bin/env python3"
) -> Path:
    """Copy the agent package into a staging dir, byte-compile it and zip it with a __main__."""
    if not (source / "__init__.py").is_file():
        raise SystemExit(f"build_bundle: {source} is not the agent package")
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "app"
        shutil.copytree(
            source,
            stage / "agent",
            ignore=lambda d, names: [
                n for n in names if n in SKIP_DIRS or Path(n).suffix in SKIP_SUFFIXES
            ],
        )
        (stage / "__main__.py").write_text(
            "import sys\n\nfrom agent.cli import main\n\nsys.exit(main())\n"
        )
        # Byte-code next to each source (unchecked-hash .pyc, which zipimport uses as is): the
        # agent then starts without compiling, which costs CPU and leaves ~4 MB of RSS behind.
        # Another Python version sees a bad magic number and falls back to the sources.
        compileall.compile_dir(
            stage,
            legacy=True,
            quiet=1,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
        zipapp.create_archive(stage, target=output, interpreter=python, compressed=True)
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build dunewatch-agent.pyz (agent package only; needs psutil and paho-mqtt).",
        epilog="example: python3 deploy/build_bundle.py --output dist/dunewatch-agent.pyz",
    )
    parser.add_argument("--output", type=Path, default=Path("dist/dunewatch-agent.pyz"))
    parser.add_argument("--python", default="/usr/bin/env python3", help="shebang interpreter")
    args = parser.parse_args(argv)
    out = build(args.output, python=args.python)
    print(f"{out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
