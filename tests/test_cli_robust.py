"""A user's first hour (issue 17): output paths checked before any work, one line per error,
truthful Ctrl-C, help with defaults and choices, no CUDA/XLA start-up noise on a CPU host."""
import argparse
import importlib
import subprocess
import sys

import pytest

from effinrx import cli
from effinrx.errors import ConfigError
from effinrx.io import check_writable


def test_check_writable(tmp_path):
    assert check_writable(tmp_path / "a" / "b.npz", "--out") == tmp_path / "a" / "b.npz"
    assert not (tmp_path / "a").exists()  # nothing created
    with pytest.raises(ConfigError, match=rf"--out {tmp_path}: is a folder, expected a file path"):
        check_writable(tmp_path, "--out")
    f = tmp_path / "f.txt"
    f.write_text("x")
    with pytest.raises(ConfigError, match=rf"--out {f}: is a file, expected a folder"):
        check_writable(f, "--out", kind="dir")
    with pytest.raises(ConfigError, match=rf"--plot {f}/x.png: {f} is a file, not a folder"):
        check_writable(f / "x.png", "--plot")
    with pytest.raises(ConfigError, match=r"--cache /proc/.*cannot write in /proc"):
        check_writable("/proc/effinrx-test/c.json", "--cache")  # read-only even for root
    assert check_writable(f, "--out") == f  # an existing writable file is fine
    assert list(tmp_path.iterdir()) == [f]  # the probe left nothing behind


def _bad_outputs(tmp_path):
    """(argv, the path its one-line error must name): each refused before a model is built."""
    d, f = tmp_path / "adir", tmp_path / "afile"
    (d / "sub.npz").mkdir(parents=True)  # compress --out adir/sub: its .npz target is a folder
    f.write_text("x")
    return [
        (["compress", "--model", "nrx-rt", "--method", "ptq:int8-pc", "--out", str(d / "sub")], d / "sub.npz"),
        (["compress", "--method", "ptq:int8-pc", "--out", str(f / "x")], f),
        (["export", "--prbs", "1", "--out", str(d)], d),
        (["sensitivity", "--out", str(f)], f),
        (["report", "--out", str(f)], f),
        (["prune", "--steps", "1", "--out", str(f / "p")], f),
        (["train", "--steps", "1", "--out", str(f)], f),
        (["deeprx", "train", "--steps", "1", "--out", str(f / "d.npz")], f),
        (["kaq", "--out", str(f)], f),
    ]


def test_bad_output_paths_fail_first_with_one_line(tmp_path, capsys):
    for argv, named in _bad_outputs(tmp_path):
        rc = cli.main(argv)
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1, (argv, err)
        assert err[0].startswith(f"effinrx {argv[0]}: error: --out") and str(named) in err[0], (argv, err)


def test_late_oserror_is_one_line_naming_the_path(monkeypatch, capsys, tmp_path):
    mod = importlib.import_module("effinrx.commands.covariance")

    def boom(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.json"))

    monkeypatch.setattr(mod, "run", boom)
    assert cli.main(["covariance"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"effinrx covariance: error: {tmp_path / 'x.json'}: Permission denied"]


def test_ctrl_c_says_what_was_saved(monkeypatch, capsys):
    mod = importlib.import_module("effinrx.commands.kaq")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "run", interrupted)
    assert cli.main(["kaq"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "cached" not in err and "nothing else of this run was saved" in err
    ns = argparse.Namespace(_command="simulate", cache=None)
    assert "use --cache" in cli._saved_on_interrupt(ns)
    ns.cache = "/nonexistent/c.json"
    assert cli._saved_on_interrupt(ns) == "no batch had finished: nothing was saved"


@pytest.mark.parametrize("batches", [0, 1, 3])
def test_simulate_ctrl_c_counts_the_cached_batches(tmp_path, monkeypatch, capsys, batches):
    import effinrx.link.montecarlo as M
    from effinrx.link.cache import SCHEMA, _sha
    from effinrx.io import atomic_write_json

    cache = tmp_path / "c2.json"

    def sweep(*a, **kw):  # an interrupted sweep: the cache holds the batches finished before Ctrl-C
        if batches:
            pts = {"2.0000": {"errors": 1, "blocks": 4 * batches, "bit_errors": 9, "bits": 99,
                              "batches": batches, "crc_failures": 1}}
            atomic_write_json(kw["cache"], {"schema": SCHEMA, "entries": {
                "k": {"receiver": "ls-lmmse", "points": pts, "sha": _sha(pts)}}})
        raise KeyboardInterrupt

    import effinrx.commands.simulate as S

    monkeypatch.setattr(M, "simulate_many", sweep)
    monkeypatch.setattr(S, "simulate_many", sweep)  # imported by name at the module's top
    argv = ["simulate", "--receiver", "ls", "--ebno", "2,3", "--cache", str(cache), "--plot", str(tmp_path / "x.png")]
    assert cli.main(argv) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    want = {0: "no batch had finished: nothing was saved",
            1: f"{cache} holds 1 finished batch; rerun the same command to resume",
            3: f"{cache} holds 3 finished batches; rerun the same command to resume"}[batches]
    assert err == f"effinrx: interrupted; {want}"
    assert cli._saved_on_interrupt(argparse.Namespace(_command="simulate", cache=cache)) == want


OWN_HELP = [n for n, _ in cli.COMMANDS if n not in ("simulate", "latency")]  # those two: other owners


@pytest.mark.parametrize("name", OWN_HELP)
def test_every_option_has_help_with_default_and_choices(name):
    mod = importlib.import_module(f"effinrx.commands.{name}")
    p = argparse.ArgumentParser(prog=f"effinrx {name}", formatter_class=cli.HelpFormatter)
    mod.add_arguments(p)
    text = p.format_help()
    for a in p._actions:
        if isinstance(a, argparse._HelpAction):
            continue
        assert a.help, f"{name} {a.option_strings or a.dest}: no help text"
        if a.choices:
            assert "{" + ",".join(map(str, a.choices)) + "}" in text, (name, a.dest)
        if a.default not in (None, False) and a.option_strings:
            shown = p._get_formatter()._get_help_string(a)
            assert "default" in shown.lower(), f"{name} {a.option_strings}: default {a.default!r} not shown"
    assert "(default: " in text


def test_subcommand_help_through_the_cli_shows_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["prune", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "{magnitude,movement}" in out and "(default: magnitude)" in out and "(default: 0.8)" in out


def test_first_tensorflow_import_prints_no_cuda_noise():
    code = "import effinrx._tf as T; t = T.tf(); t.constant(1.0) + 1; import sys; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "ok"
    for noise in ("cuInit", "Unable to register", "computation placer", "absl::InitializeLog"):
        assert noise not in r.stderr, r.stderr


# stderr of a real CPU run: absl's first-use warning glued to a tqdm update, then XLA's INFO lines
XLA_NOISE = (b"\rsweep +3.0 dB:   0%|          | 0/1 [00:00<?, ?batch/s]"
             b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             b"I0000 00:00:1796197755.982587   16684 service.cc:152] XLA service 0x7fca782b6960 initialized "
             b"for platform Host (this does not guarantee that XLA will be used). Devices:\n"
             b"I0000 00:00:1796197755.982667   16684 service.cc:160]   StreamExecutor device (0): Host, "
             b"Default Version\n"
             b"I0000 00:00:1796197756.178410   16684 device_compiler.h:188] Compiled cluster using XLA!  "
             b"This line is logged at most once for the lifetime of the process.\n"
             b"\rsweep +3.0 dB: 100%|##########| 1/1 [00:42<00:00, 42.09s/batch]")


def test_filter_chunk_drops_xla_info_keeps_progress_and_errors():
    from effinrx._tf import filter_chunk

    err = b"E0000 00:00:1.5 1 kernel.cc:1] real failure\nTraceback (most recent call last):\n"
    out = filter_chunk(XLA_NOISE + err, cpu_only=True)
    assert out == (b"\rsweep +3.0 dB:   0%|          | 0/1 [00:00<?, ?batch/s]"
                   b"\rsweep +3.0 dB: 100%|##########| 1/1 [00:42<00:00, 42.09s/batch]" + err)


FILTER_SCRIPT = """
import os, sys
from effinrx._tf import live_filtered_stderr
with live_filtered_stderr():
    os.write(2, b"\\rbar 1/2")
    sys.stdin.buffer.readline()  # the test has seen the unterminated update: it was passed on at once
    os.write(2, sys.stdin.buffer.read())
    print("effinrx simulate: error: a real problem", file=sys.stderr)
print("done")
"""


def test_live_filter_is_prompt_quiet_and_keeps_real_lines():
    import select

    p = subprocess.Popen([sys.executable, "-c", FILTER_SCRIPT], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""
    while b"bar 1/2" not in seen:
        assert select.select([p.stderr], [], [], 60)[0], f"no live progress update: {seen!r}"
        seen += p.stderr.read1(1024)
    out, err = p.communicate(b"\n" + XLA_NOISE + b"\n", timeout=60)
    err = (seen + err).decode()
    assert p.returncode == 0 and out.decode().strip() == "done"
    for noise in ("absl::InitializeLog", "XLA service", "StreamExecutor", "Compiled cluster"):
        assert noise not in err, err
    assert "42.09s/batch]" in err and err.endswith("effinrx simulate: error: a real problem\n"), err


def test_first_xla_compile_under_the_cli_filter_is_quiet():
    code = ("import effinrx._tf as T\nwith T.live_filtered_stderr():\n    t = T.tf()\n"
            "    print(float(t.function(jit_compile=True)(lambda x: x * 2.0)(t.constant(1.0))))\n"
            "    import sys; print('real line', file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "2.0", r.stderr
    assert r.stderr == "real line\n", r.stderr
