"""`vc classify` and `vc models` (out/bin/vc, built by scripts/build.sh; VISIONCORE_VC overrides): the CLI gives the
same top-k as the Python API on the same weights, and clear errors for bad input."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import visioncore as vc

ROOT = pathlib.Path(__file__).resolve().parents[3]
VC = pathlib.Path(os.environ.get("VISIONCORE_VC", ROOT / "out" / "bin" / "vc"))
CHELSEA = ROOT / "data" / "images" / "chelsea.png"


def run(*args):
    assert VC.exists(), f"{VC} is missing: build it with scripts/build.sh (or set VISIONCORE_VC)"
    return subprocess.run([str(VC), *map(str, args)], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def name():
    names = vc.list_models()
    assert names, "the classifier registry is empty"
    return "resnet18" if "resnet18" in names else names[0]


def test_models_lists_the_registry():
    r = run("models")
    assert r.returncode == 0, r.stderr
    listed = [line.split()[0] for line in r.stdout.splitlines()]
    assert listed == vc.list_models()
    assert run("classify", "--list").stdout == r.stdout


def test_classify_matches_python(name, tmp_path):
    weights = tmp_path / "w.safetensors"
    vc.create_model(name, seed=5).save(weights)
    r = run("classify", CHELSEA, "--model", name, "--weights", weights, "--topk", 3, "--json", "--threads", 1)
    assert r.returncode == 0, r.stderr
    top = json.loads(r.stdout)
    model = vc.create_model(name).eval()
    model.load_state_dict(weights)
    with vc.no_grad():
        logits = model(model.transform(CHELSEA)).numpy()[0].astype(np.float64)
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    expected = np.argsort(-probs, kind="stable")[:3]
    assert [t["index"] for t in top] == list(expected)
    names = vc.imagenet_class_names()
    for t in top:
        assert t["label"] == names[t["index"]]
        assert abs(t["probability"] - probs[t["index"]]) < 1e-5
    text = run("classify", CHELSEA, "--model", name, "--weights", weights)
    assert text.returncode == 0 and text.stdout.count("%") == 5 and names[top[0]["index"]] in text.stdout


def test_classify_errors(name, tmp_path):
    r = run("classify", CHELSEA, "--model", "no_such_model", "--weights", "x.safetensors")
    assert r.returncode != 0 and "unknown model 'no_such_model'" in r.stderr
    r = run("classify", CHELSEA, "--model", name)
    assert r.returncode != 0 and "--weights" in r.stderr
    other = tmp_path / "other.safetensors"
    vc.create_model(name, num_classes=10).save(other)
    r = run("classify", CHELSEA, "--model", name, "--weights", other)
    assert r.returncode != 0 and "shape mismatches" in r.stderr and "[10," in r.stderr
    weights = tmp_path / "w.safetensors"
    vc.create_model(name).save(weights)
    r = run("classify", ROOT / "data" / "images" / "README.md", "--model", name, "--weights", weights)
    assert r.returncode != 0 and "unrecognised image data" in r.stderr
    r = run("classify", tmp_path / "missing.png", "--model", name, "--weights", weights)
    assert r.returncode != 0 and r.stderr.strip()
    r = run("classify", CHELSEA, "--model", name, "--weights", weights, "--topk", 0)
    assert r.returncode != 0 and "--topk" in r.stderr
    # --num-classes picks the head the weights were trained with
    r = run("classify", CHELSEA, "--model", name, "--weights", other, "--num-classes", 10, "--json")
    assert r.returncode == 0, r.stderr
    assert all(t["label"] is None and 0 <= t["index"] < 10 for t in json.loads(r.stdout))
