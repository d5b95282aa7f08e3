"""The command line: the happy path once, and every bad input as one line + non-zero exit."""

import json
import os
import subprocess
import sys


from semsim.cli import main


def _err(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_presets_lists(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "gpt-baseline" in out and "splm-multixi-sq3" in out


def test_train_eval_generate(tmp_path, capsys, data_dir):
    out = tmp_path / "run"
    argv = ["train", "--preset", "gpt-tiny", "--out", str(out), "train.steps=6", "train.batch_size=4",
            "model.block_size=32", "train.eval_tokens=2048", "train.progress=false"]
    assert main(argv) == 0
    assert (out / "loss_curve.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["eval", str(out), "--tokens", "2048"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["tokens"] > 0 and res["ppl"] > 1
    assert main(["generate", str(out), "--prompt", "ROMEO:", "--max-new-tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("ROMEO:")
    assert main(["diagnose", "causal", str(out)]) == 0


def test_unknown_preset(capsys):
    assert "unknown preset" in _err(capsys, ["train", "--preset", "nope"])


def test_missing_checkpoint(tmp_path, capsys):
    assert "no checkpoint" in _err(capsys, ["eval", str(tmp_path / "missing")])


def test_corrupt_checkpoint(tmp_path, capsys):
    (tmp_path / "model.safetensors").write_bytes(b"\x00garbage")
    (tmp_path / "config.json").write_text('{"model": {"family": "gpt"}}')
    assert "corrupt" in _err(capsys, ["generate", str(tmp_path)])


def test_empty_corpus(tmp_path, capsys, data_dir):
    (tmp_path / "empty.txt").write_text("")
    assert "empty" in _err(capsys, ["data", "prepare", str(tmp_path / "empty.txt")])


def test_block_size_longer_than_corpus(tmp_path, capsys, data_dir):
    (tmp_path / "small.txt").write_text("To be or not to be, that is the question. " * 20)
    err = _err(capsys, ["train", "--preset", "gpt-tiny", "--out", str(tmp_path / "r"),
                        f"data.corpus={tmp_path / 'small.txt'}", "model.block_size=512"])
    assert "block size 512 is longer" in err


def test_unknown_config_field(tmp_path, capsys):
    err = _err(capsys, ["train", "--preset", "gpt-tiny", "--out", str(tmp_path), "model.d_modle=3"])
    assert "unknown config field 'model.d_modle'" in err


def test_python_dash_m_and_exit_code(tmp_path):
    env = {**os.environ}
    p = subprocess.run([sys.executable, "-m", "semsim", "train", "--preset", "nope"], capture_output=True,
                       text=True, env=env)
    assert p.returncode == 2 and p.stderr.startswith("semsim: error: unknown preset") and "Traceback" not in p.stderr
