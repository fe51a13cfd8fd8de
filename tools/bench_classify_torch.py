#!/usr/bin/env python3
"""Times timm's model in PyTorch eager and in ONNX Runtime (ONNX export of the same model) for
Benchmarks/ClassifierBench, which runs this script beside its own numbers, model by model, in the same run.

  tools/bench_classify_torch.py MODEL BATCH [threads] [runs]
Random init, eval mode, 224x224 input (the model's input size). Prints one machine-readable line:
  torch MODEL BATCH torch_ms ort_ms peak_mb
with median wall ms after warm-up ("nan" for ONNX Runtime when onnxruntime is not installed) and the process's
peak resident memory while creating and running the PyTorch model (MB, above the RSS after importing torch),
measured by resetting the high-water mark through /proc/self/clear_refs.
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
    name, batch = sys.argv[1], int(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 10
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
    with torch.inference_mode():
        t_torch = bench(lambda: m(x), runs)
    peak = rss_mb("VmHWM") - base
    t_ort = float("nan")
    try:
        import onnxruntime as ort
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "m.onnx")
            torch.onnx.export(m, x, p, opset_version=17, dynamo=False)
            so = ort.SessionOptions()
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
            s = ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])
            xn = x.numpy()
            iname = s.get_inputs()[0].name
            t_ort = bench(lambda: s.run(None, {iname: xn}), runs)
    except ImportError:
        pass
    print(f"torch {name} {batch} {t_torch:.2f} {t_ort:.2f} {peak:.1f}", flush=True)


if __name__ == "__main__":
    main()
