#!/usr/bin/env python3
"""Times timm's model in PyTorch eager and in ONNX Runtime (ONNX export of the same model) for
Benchmarks/ClassifierBench, which alternates rounds of its own timings with rounds of these, so that each ratio
compares timings taken seconds apart (this machine's speed drifts by 30-60% over minutes).

  tools/bench_classify_torch.py MODEL BATCH THREADS COMMANDS
Random init, eval mode, the model's input size. After building both (and timing PyTorch once, which measures
the peak memory) it prints one line:
  ready PEAK_MB ORT
with the process's peak resident memory while creating and running the PyTorch model (MB, above the RSS after
importing torch, through a reset of the high-water mark in /proc/self/clear_refs) and ORT 1 when onnxruntime is
installed (0 otherwise). Then it reads commands, one per line, from the file COMMANDS (a FIFO the caller writes):
  torch RUNS   or   ort RUNS
and answers each with the median wall ms of RUNS calls after two warm-up calls ("nan" for ort without
onnxruntime), until the end of the file.
"""
import os
import statistics
import sys
import tempfile
import time


def rss_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench(fn, runs):
    for _ in range(2):
        fn()
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1000


def main():
    name, batch, threads, commands = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    import torch
    import timm
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    base = rss_mb("VmRSS")
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        pass
    m = timm.create_model(name, pretrained=False).eval()
    size = m.pretrained_cfg["input_size"]
    x = torch.randn(batch, *size)

    def run_torch():
        with torch.inference_mode():
            m(x)

    bench(run_torch, 1)
    peak = rss_mb("VmHWM") - base
    run_ort = None
    with tempfile.TemporaryDirectory() as d:
        try:
            import onnxruntime as ort
            p = os.path.join(d, "m.onnx")
            torch.onnx.export(m, x, p, opset_version=17, dynamo=False)
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            s = ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            iname = s.get_inputs()[0].name
            run_ort = lambda: s.run(None, {iname: xn})
        except ImportError:
            pass
        print(f"ready {peak:.1f} {1 if run_ort else 0}", flush=True)
        with open(commands) as f:
            for line in f:
                what, runs = line.split()
                fn = run_torch if what == "torch" else run_ort
                ms = bench(fn, int(runs)) if fn else float("nan")
                print(f"{ms:.3f}", flush=True)


if __name__ == "__main__":
    main()
