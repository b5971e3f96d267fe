"""CPU training-step benchmark: glibc's default malloc thresholds against the ones every task sets.

Each mode runs in its own process (mallopt is process-wide), alternating, on the same random batch:
Siamese_3 forward + backward + Adam step, batch 32, 4 lights.

    python -m bench.train_step                 # 24 px (the sample spec) and 64 px (the DeepPCB spec)
    python -m bench.train_step --sizes 128
"""

import argparse
import json
import subprocess
import sys

import numpy as np

CHILD = """
import json, sys, time, torch
from tao_siamese_oi.utils.memory import keep_freed_memory
size, tuned, steps, threads = int(sys.argv[1]), sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
applied = keep_freed_memory() if tuned else False
torch.set_num_threads(threads)
torch.manual_seed(0)
from tao_siamese_oi.model.networks import create_model, pair_distance
net = create_model("Siamese_3", input_shape=(3, 4 * size, size), embedding_size=5)
opt = torch.optim.Adam(net.parameters())
x1, x2 = torch.randn(32, 3, 4 * size, size), torch.randn(32, 3, 4 * size, size)
def step():
    a, b = net(x1, x2)
    loss = pair_distance(a, b).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
step()
start = time.perf_counter()
for _ in range(steps):
    step()
print(json.dumps({"applied": applied, "pairs_per_s": steps * 32 / (time.perf_counter() - start)}))
"""


def measure(size: int, tuned: bool, steps: int, threads: int) -> float:
    args = [sys.executable, "-c", CHILD, str(size), "1" if tuned else "0", str(steps), str(threads)]
    result = json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)
    if result["applied"] != tuned:
        raise SystemExit("the malloc thresholds could not be set on this system; nothing to compare")
    return result["pairs_per_s"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[24, 64])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    for size in args.sizes:
        runs = {"default": [], "raised": []}
        for _ in range(args.rounds):
            runs["default"].append(measure(size, False, args.steps, args.threads))
            runs["raised"].append(measure(size, True, args.steps, args.threads))
        med = {name: float(np.median(v)) for name, v in runs.items()}
        print(
            f"Siamese_3 train step, 4 x {size} x {size}, batch 32, {args.threads} threads: "
            f"default malloc {med['default']:.1f} pairs/s, raised thresholds {med['raised']:.1f} pairs/s, "
            f"ratio {med['raised'] / med['default']:.2f}x"
        )


if __name__ == "__main__":
    main()
