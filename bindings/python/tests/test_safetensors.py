import os
import pathlib

import numpy as np
import pytest

import visioncore as vc

FIXTURE = pathlib.Path(__file__).resolve().parents[3] / "Tests" / "VisionCoreTests" / "Fixtures" / "safetensors_format.safetensors"


def test_roundtrip_dtypes_and_metadata(tmp_path):
    rng = np.random.default_rng(0)
    data = {"w": rng.normal(size=(3, 4)).astype(np.float32), "h": rng.normal(size=5).astype(np.float16),
            "i": np.arange(6, dtype=np.int64).reshape(2, 3), "j": np.array([-1, 2], np.int32),
            "u": np.array([[0, 255]], np.uint8), "s": np.float32(1.5)}
    path = tmp_path / "x.safetensors"
    vc.save_file(data, path, metadata={"epoch": "4"})
    back = vc.load_file(path)
    assert list(back) == list(data)
    for k, v in data.items():
        assert back[k].dtype == np.asarray(v).dtype, k
        np.testing.assert_array_equal(back[k], v)
    assert vc.read_metadata(path) == {"epoch": "4"}


def test_reads_reference_writer_file():
    d = vc.load_file(FIXTURE)
    assert d["f16"].dtype == np.float16
    np.testing.assert_allclose(d["f16"].astype(np.float32), d["f32"], atol=1e-3)
    assert vc.read_metadata(FIXTURE)["format"] == "pt"


def test_matches_safetensors_package_format(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    a = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "y": np.array([7], np.int64)}
    p1 = tmp_path / "vc.safetensors"
    vc.save_file(a, p1)
    back = st.load_file(str(p1))
    for k in a:
        np.testing.assert_array_equal(back[k], a[k])


def test_corrupt_files_raise(tmp_path):
    good = FIXTURE.read_bytes()
    for n in (0, 7, 8, 100, len(good) - 1):
        p = tmp_path / f"t{n}.safetensors"
        p.write_bytes(good[:n])
        with pytest.raises(vc.VisionCoreError):
            vc.load_file(p)
    lying = bytearray(good)
    lying[0:8] = (10**12).to_bytes(8, "little")
    p = tmp_path / "lying.safetensors"
    p.write_bytes(bytes(lying))
    with pytest.raises(vc.VisionCoreError, match="header length"):
        vc.load_file(p)
    with pytest.raises(vc.VisionCoreError, match="cannot open"):
        vc.load_file(tmp_path / "missing.safetensors")


def test_failed_save_keeps_previous_file(tmp_path):
    p = tmp_path / "keep.safetensors"
    vc.save_file({"a": np.ones(3, np.float32)}, p)
    with pytest.raises(TypeError):
        vc.save_file({"a": np.ones(3, np.complex64)}, p)
    np.testing.assert_array_equal(vc.load_file(p)["a"], np.ones(3, np.float32))
    assert not [f for f in os.listdir(tmp_path) if ".tmp-" in f]
