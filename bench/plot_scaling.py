"""Draws W1 throughput against consumer processes × threads from `conveyor bench w1 --json` lines."""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

source, target = sys.argv[1], sys.argv[2]
points = {}
for line in open(source):
    line = line.strip()
    if not line.startswith("{"):
        continue
    result = json.loads(line)
    shape = result["shape"].split(",")[0]
    processes, threads = (int(part) for part in shape.split("×"))
    if not result["verified"]:
        sys.exit(f"W1 {shape} was not verified: {result.get('firstError')}")
    points.setdefault(processes, []).append((threads, result["tasksPerSecond"]))

figure, axes = plt.subplots(figsize=(7, 4.5), dpi=110)
for processes in sorted(points):
    series = sorted(points[processes])
    axes.plot([t for t, _ in series], [r for _, r in series], marker="o", label=f"{processes} process(es)")
axes.set_xscale("log", base=2)
axes.set_xticks([1, 2, 4, 8], labels=["1", "2", "4", "8"])
axes.set_xlabel("worker threads per consumer process")
axes.set_ylabel("echo tasks/s (W1, verified)")
axes.set_title("Conveyor W1 (echo) throughput by consumer processes × threads, 2 cores", fontsize=10)
axes.set_ylim(bottom=0)
axes.grid(True, alpha=0.3)
axes.legend()
figure.tight_layout()
figure.savefig(target)
