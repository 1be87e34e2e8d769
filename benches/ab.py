"""Same-process A/B of two builds of fastbce: the installed one against
another (a folder holding a `fastbce` package, such as a virtual
environment's site-packages, or a wheel unpacked there).

    pip wheel . -w /tmp/b --no-deps && unzip -q /tmp/b/*.whl -d /tmp/b/pkg
    python benches/ab.py /tmp/b/pkg --sizes 1e6,1e7 --repeats 9

Both builds run in this one process on the same arrays, taking turns repeat
by repeat (see bench.py's `median_times`); a ratio above 1 means the
installed build is slower. Run it twice with the builds swapped to see the
order bias.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List

import numpy as np

import fastbce

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import CASES, correct, fmt_time, make_problem, markdown, median_times, show_config_text  # noqa: E402


def load_other(folder: Path) -> ModuleType:
    """The `fastbce` package in `folder`, imported as `fastbce_other`."""
    init = folder / "fastbce" / "__init__.py"
    spec = importlib.util.spec_from_file_location("fastbce_other", init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:
        raise SystemExit(f"no fastbce package in {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fastbce_other"] = module
    spec.loader.exec_module(module)
    return module


def call(fb: Any, case: str, p: Any) -> Callable[[], Any]:
    """The case's call on `p` through the build `fb`: () -> (loss, grad)."""
    if case in ("mean", "uint8", "pos_weight"):
        return lambda: (fb.binary_cross_entropy_with_logits(p.x, p.y, pos_weight=p.pos_weight), None)
    if case == "none_out":
        return lambda: (fb.binary_cross_entropy_with_logits(p.x, p.y, reduction="none", out=p.out), None)
    if case == "none_new":
        return lambda: (fb.binary_cross_entropy_with_logits(p.x, p.y, reduction="none"), None)
    if case == "vg_out":
        return lambda: fb.binary_cross_entropy_with_logits_value_and_grad(p.x, p.y, out=p.out)
    return lambda: fb.binary_cross_entropy_with_logits_value_and_grad(p.x, p.y)


def main(argv: List[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("other", type=Path, help="folder holding the other build's fastbce package")
    ap.add_argument("--sizes", default="1e5,1e6,1e7")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--threads", type=int, default=fastbce.get_num_threads())
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args(argv)
    other = load_other(args.other)
    builds: Dict[str, Any] = {"installed": fastbce, "other": other}
    for fb in builds.values():
        fb.set_num_threads(args.threads)
    print(show_config_text())
    print(f"installed: {Path(fastbce.__file__).parent}\nother:     {Path(other.__file__).parent}\n")
    rows = []
    for case in args.cases.split(","):
        for dtype in (np.dtype(d).type for d in args.dtypes.split(",")):
            for n in (int(float(s)) for s in args.sizes.split(",")):
                p = make_problem(case, dtype, n)
                fns = {name: call(fb, case, p) for name, fb in builds.items()}
                for name, fn in fns.items():
                    assert correct(p, fn()), f"{name} is wrong on {case}"
                times = median_times(fns, args.repeats)
                ratio = times["installed"] / times["other"]
                rows.append([case, np.dtype(dtype).name, f"{n:.0e}", *map(fmt_time, times.values()), f"{ratio:.3f}"])
                print(" | ".join(rows[-1]), flush=True)
    print("\n" + markdown(["case", "dtype", "N", "installed", "other", "installed / other"], rows))


if __name__ == "__main__":
    main()
