"""The benchmark scripts still run (tiny sizes, CPU): they measure nothing here."""
import importlib.util
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_smoke_on_cpu(capsys, default_data):
    rc = _script("gpu_check").main(["--device", "cpu", "--epochs", "1", "--faces", "40",
                                    "--precision", "32"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "net5   32 on cpu: 1 epochs" in out and "CPU round trip max gap 0.0000 px" in out


def test_gpu_check_says_when_there_is_no_gpu(capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert _script("gpu_check").main(["--epochs", "1"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_profile_step_lists_every_layer(capsys):
    _script("profile_step").main(["--net", "net2", "--precision", "32", "--batch", "4",
                                  "--steps", "1"])
    out = capsys.readouterr().out
    assert "precision 32" in out
    for layer in ("conv1", "pool1", "conv3", "hidden4", "output"):
        assert f"\n{layer}" in out


def test_bench_train_has_precision_and_expert(capsys):
    _script("bench_train").main(["--rounds", "1", "--samples", "20", "--precision", "32",
                                 "--only", "facekeypoints", "skorch", "expert"])
    out = capsys.readouterr().out
    assert "x stock skorch" in out and "x expert" in out
    for name in ("facekeypoints 32", "skorch 32", "expert 32"):
        assert name in out


def test_precision_table_smoke(capsys, default_data):
    _script("precision_table").main(["--nets", "net5", "--seeds", "0", "--epochs", "1",
                                     "--faces", "24", "--batch-size", "8"])
    out = capsys.readouterr().out
    assert "net5" in out and "bf16 vs fp32" in out and "worst bf16 vs fp32" in out


def test_bench_env_compares_settings_in_separate_processes(capsys):
    _script("bench_env").main(["--env", "default", "OMP_WAIT_POLICY=PASSIVE", "--net", "net2",
                               "--batch", "8", "--samples", "20", "--epochs", "1",
                               "--rounds", "1"])
    out = capsys.readouterr().out
    assert "round 1: default" in out and "OMP_WAIT_POLICY=PASSIVE" in out
    assert out.count("median epoch") == 2
