"""What rendering the run page's fragments for one live batch costs daphne, against another revision.

daphne renders each write batch once for all its fragment watchers (live.fanout), from the events alone
(live.fragments.render_messages). This times that call, warm, for the batches a quiet run sends: one fold
metric (early in a run, and after 30 fits, when the figures link the earlier rows to the results), one log
line and one progress report. Each tree renders in child processes of its own, the trees taking turns.

It also times the render the way a quiet run meets it: each render after --idle-ms of sleep (the latency
benchmark's 20 events/s leaves 50 ms between events), when what the render touches has left the CPU's caches.
Beside it, the JSON stream's work for the same batch (runs.events.to_json of each message), after the same
sleep. On this 2-core VM a warm log-line render of 80 µs took about 500 µs after 50 ms asleep: the render's
cost to a lone watcher is mostly the memory it touches, not its instructions.

    python bench/render_cost.py --baseline-rev 49d1237
    python bench/render_cost.py --repeats 3 --samples 500        # this tree alone
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after the tree a child puts first

from bench import deployed  # noqa: E402
from bench.trees import tree_at  # noqa: E402

TS = "2026-12-04T10:15:02.311000+00:00"
# The batches timed, in the order batches() builds them (the parent prints them without setting Django up).
NAMES = ["fold metric, 8 fits in", "fold metric, 40 fits in", "log line", "progress"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-rev", default=None, help="a git revision to render beside this tree")
    parser.add_argument("--repeats", type=int, default=5, help="child processes per tree, taking turns")
    parser.add_argument("--samples", type=int, default=2000, help="renders timed per batch kind and child")
    parser.add_argument("--idle-samples", type=int, default=40, help="renders timed after a sleep, per kind")
    parser.add_argument("--idle-ms", type=float, default=50.0, help="the sleep before each of those")
    deployed.add_argument(parser)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, default=ROOT, help=argparse.SUPPRESS)
    return parser.parse_args()


def batches():
    """[(name, messages)]: each batch built by runs.events as the reporter builds it."""
    from runs import events

    def message(seq, event):
        return {"seq": seq, "type": event[0], "ts": TS, "run": 7, "data": event[1]}

    def fold(seq, finished):
        return message(seq, events.metrics(
            branch="default", variant=2, variant_description="LogisticRegression(C=1.0)", fold=3, fit_time=0.0312,
            metrics={"accuracy": 0.95, "f1_macro": 0.94, "roc_auc": 0.96}, primary_metric="accuracy", primary=0.95,
            running_mean=0.93, finished_fits=finished, total_fits=100, eta_seconds=12.0, elapsed_seconds=30.5,
            best_score=0.96, message="Fitting fold 3/5 - LogisticRegression"))

    return list(zip(NAMES, [
        [fold(41, 8)],
        [fold(41, 40)],
        [message(41, events.log_line("info", "fitting fold 3 of variant 2", fold=3, variant=2))],
        [message(41, events.progress("Fitting fold 3/5", progress=0.4, finished_fits=8, total_fits=20,
                                     eta_seconds=12.0, elapsed_seconds=30.0))],
    ]))


def child(args):
    sys.path.insert(0, str(args.tree))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from runs import events
    from live import fragments

    def timed(call, samples, pause):
        times = []
        for _ in range(samples):
            if pause:
                time.sleep(pause)
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
        return statistics.median(times) * 1e6

    found = {}
    for name, messages in batches():
        def render():
            fragments.render_messages(7, messages)

        def encode():
            [events.to_json(m) for m in messages]

        for _ in range(200):  # warm: templates loaded and compiled, caches filled
            render()
            encode()
        pause = args.idle_ms / 1000
        found[name] = {"warm": timed(render, args.samples, 0), "idle": timed(render, args.idle_samples, pause),
                       "json idle": timed(encode, args.idle_samples, pause)}
    print(json.dumps(found))


def main():
    args = parse_args()
    if args.child:
        return child(args)  # with the settings its parent chose, in the environment it inherits
    settings_line = deployed.use(args.debug)
    trees = [("this tree", ROOT)]
    if args.baseline_rev:
        trees.append((f"baseline {args.baseline_rev}", tree_at(args.baseline_rev)))
    results = {label: [] for label, _ in trees}
    load_before = os.getloadavg()
    for _ in range(args.repeats):
        for label, tree in trees:
            out = subprocess.run([sys.executable, __file__, "--child", "--tree", str(tree), "--samples",
                                  str(args.samples), "--idle-samples", str(args.idle_samples), "--idle-ms",
                                  str(args.idle_ms)], cwd=tree, capture_output=True, text=True, check=True).stdout
            results[label].append(json.loads(out.splitlines()[-1]))
    load_after = os.getloadavg()

    render = "Rendering one live batch's fragments (live.fragments.render_messages)"
    for what, title in [("warm", f"{render}, warm"), ("idle", f"{render}, after {args.idle_ms:g} ms asleep"),
                        ("json idle", f"The JSON stream's work instead (runs.events.to_json of each message), after "
                                      f"{args.idle_ms:g} ms asleep")]:
        table(results, trees, what, title)
    print(f"{args.repeats} child processes per tree, taking turns; {args.samples} warm renders and "
          f"{args.idle_samples} after a sleep, each; in brackets, the spread of the children's medians")
    print(f"Load average (1, 5, 15 min): before {' '.join(f'{x:.2f}' for x in load_before)}, "
          f"after {' '.join(f'{x:.2f}' for x in load_after)}; {os.cpu_count()} CPUs")
    print(settings_line)


def table(results, trees, what, title):
    print(f"\n{title}; median µs per call")
    header = f"{'batch':<26}" + "".join(f"{label:>28}" for label, _ in trees)
    print(header + ("  this / baseline: medians, fastest" if len(trees) > 1 else ""))
    for name in NAMES:
        cells, medians, fastest = "", [], []
        for label, _ in trees:
            values = [r[name][what] for r in results[label]]
            medians.append(statistics.median(values))
            fastest.append(min(values))
            cells += f"{f'{medians[-1]:.1f} ({min(values):.1f}-{max(values):.1f})':>28}"
        # Some children run far slower throughout (a busy neighbour on the host): the fastest children's ratio
        # is the cost of the code itself, the medians' includes that noise.
        ratio = f"  {medians[0] / medians[1]:.2f}, {fastest[0] / fastest[1]:.2f}" if len(medians) > 1 else ""
        print(f"{name:<26}{cells}{ratio}")


if __name__ == "__main__":
    main()
