"""``python -m tests.bench [render] [farm] [dimse] [http] [browser] [mpr] [vr] [mpr_browser]``: run benchmarks, print and save figures."""
from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

SUITES = ["render", "farm", "dimse", "http", "browser", "mpr", "vr", "mpr_browser"]
OUT = Path(__file__).resolve().parents[2] / "bench-results"


def _print(prefix: str, value) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _print(f"{prefix}.{key}" if prefix else key, sub)
    else:
        shown = f"{value:,.2f}" if isinstance(value, float) else value
        print(f"  {prefix:<48} {shown}")


def main(argv: list[str]) -> None:
    chosen = argv or SUITES
    results = {"when": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform()}
    for name in chosen:
        print(f"== {name}", flush=True)
        try:
            module = importlib.import_module(f"tests.bench.bench_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tests.bench.bench_{name}":
                raise
            print(f"  (no benchmark {name!r} yet)")
            continue
        results[name] = module.run()
        _print("", results[name])
    OUT.mkdir(exist_ok=True)
    (OUT / "latest.json").write_text(json.dumps(results, indent=2))
    print(f"saved {OUT / 'latest.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
