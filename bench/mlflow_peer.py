"""The MLflow peer of bench/throughput.py: logs metrics to a local MLflow tracking server as fast as it can.

Runs in MLflow's own virtualenv (bench/throughput.py creates it at .runwatch/bench-mlflow-venv), never with the
project's packages, and imports nothing of Runwatch. Prints one JSON line: {"events", "seconds", "stored"}.

    .runwatch/bench-mlflow-venv/bin/python bench/mlflow_peer.py --uri http://127.0.0.1:8695 --mode log_batch --events 20000
"""

import argparse
import json
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", required=True)
    parser.add_argument("--mode", choices=["log_metric", "log_batch"], required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=args.uri)
    experiment = client.get_experiment_by_name("bench-throughput")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("bench-throughput")
    run_id = client.create_run(experiment_id).info.run_id
    started = time.perf_counter()
    if args.mode == "log_metric":
        for i in range(args.events):
            client.log_metric(run_id, "loss", 1.0 / (i + 1), step=i)
    else:
        now = int(time.time() * 1000)
        for first in range(0, args.events, args.batch):
            metrics = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(first, min(first + args.batch, args.events))]
            client.log_batch(run_id, metrics=metrics)
    seconds = time.perf_counter() - started
    # Every value stored: read the history back (outside the timing) so a lossy peer cannot look fast.
    stored = len(client.get_metric_history(run_id, "loss"))
    client.set_terminated(run_id)
    print(json.dumps({"events": args.events, "seconds": seconds, "stored": stored}), flush=True)


if __name__ == "__main__":
    main()
