"""ML backend throughput: the bundled model server's /predict and training, over HTTP (run by hand).

Starts `kubelabel model-server` as a subprocess (a fresh MODEL_DIR), trains it through the
legacy /train endpoint on N generated sentences, then predicts M tasks through kubelabel's
client at several batch sizes, and prints tasks/s, training seconds per example count and the
batch-size speed-up ratio.

    .venv/bin/python bench/ml.py
    .venv/bin/python bench/ml.py --tasks 5000 --train 100 1000 5000
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from api_server.ml.client import MLBackendClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.net import free_port, wait_for_port  # noqa: E402

CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="topic" toName="text"><Choice value="a"/><Choice value="b"/><Choice value="c"/></Choices></View>"""
WORDS = {label: [f"{label}{i}" for i in range(300)] for label in "abc"}
FILLER = [f"w{i}" for i in range(500)]


def sentence(rng: random.Random, label: str) -> str:
    words = rng.sample(WORDS[label], 3) + rng.sample(FILLER, 6)
    rng.shuffle(words)
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=2000, help="tasks to predict per batch size")
    parser.add_argument("--train", type=int, nargs="+", default=[100, 1000, 5000], help="training set sizes")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    args = parser.parse_args()

    rng = random.Random(1)
    port = free_port()
    with tempfile.TemporaryDirectory() as model_dir:
        code = f"import sys; from kubelabel_model_server.app import serve; sys.exit(serve('127.0.0.1', {port}))"
        env = {**os.environ, "MODEL_DIR": model_dir, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            wait_for_port(port, timeout=60)
            url = f"http://127.0.0.1:{port}"
            print("training (legacy /train, all examples at once):")
            for n in args.train:
                labels = [rng.choice("abc") for _ in range(n)]
                annotations = [
                    {
                        "id": i,
                        "result": [
                            {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [lab]}}
                        ],
                        "task": {"id": i, "data": {"text": sentence(rng, lab)}},
                    }
                    for i, lab in enumerate(labels)
                ]
                with MLBackendClient(url, timeout=600) as client:
                    started = time.perf_counter()
                    client.train(project="1.0", label_config=CONFIG, annotations=annotations)
                    seconds = time.perf_counter() - started
                print(f"  {n:>7} examples: {seconds:7.2f} s  ({n / seconds:,.0f} examples/s)")

            tasks = [{"id": i, "data": {"text": sentence(rng, rng.choice("abc"))}} for i in range(args.tasks)]
            print(f"predicting {args.tasks} tasks:")
            rates = {}
            for batch in args.batches:
                with MLBackendClient(url, timeout=600, batch_size=batch) as client:
                    started = time.perf_counter()
                    predictions = client.predict(tasks, label_config=CONFIG, project="1.0")
                    seconds = time.perf_counter() - started
                assert all(p is not None for p in predictions)
                rates[batch] = args.tasks / seconds
                print(f"  batch {batch:>4}: {rates[batch]:9,.0f} tasks/s")
            low, high = min(args.batches), max(args.batches)
            print(f"batch {high} vs batch {low}: {rates[high] / rates[low]:.1f}x")
        finally:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
