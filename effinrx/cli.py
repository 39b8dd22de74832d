"""The ``effinrx`` command line. Every subcommand calls the same library functions the benchmarks use.

Subcommands live in ``effinrx/commands/<name>.py`` (``add_arguments(parser)``, ``run(args)``), their
one-line help in :data:`COMMANDS` (the one place), and are imported only when used, so
``effinrx --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from effinrx import __version__
from effinrx.errors import EffinrxError
from effinrx.io import oserror_line
from effinrx.receivers.checks import INPUT_CHECK_TAG

# Ordered as a researcher's workflow: simulate baselines -> train -> compress -> export -> time -> report.
COMMANDS = [
    ("simulate", "TBLER/BER Monte-Carlo of receivers over Eb/N0 on the same slots (table + PNG)"),
    ("covariance", "estimate and cache the LMMSE channel covariance matrices"),
    ("train", "train or fine-tune a neural receiver (NRX-RT/Large) on CPU"),
    ("prune", "prune an NRX (tfmot magnitude 0.8 / 2:4, movement), fine-tune, save with its recipe"),
    ("compress", "save a compressed NRX (PTQ, W8A8, QAT, pruned, distilled) with its recipe; reloads and exports"),
    ("sensitivity", "per-layer quantization sensitivity: quantize one layer at a time, LLR SQNR + TB errors"),
    ("export", "export a receiver to ONNX (fixed shapes per PRB count) and check parity"),
    ("latency", "latency/throughput table per model x precision x engine (ORT CPU, TensorRT)"),
    ("deeprx", "DeepRx-style ResNet receiver: train, PTQ, BLER per mobility class"),
    ("kaq", "KAQ vs QAT on the deep-unfolded PGD-Net MIMO detector"),
    ("report", "run a claims tier (default smoke) and write the claims report with plots"),
]

DESCRIPTION = """\
What does quantizing, pruning or distilling a neural receiver cost in error rate, and what does it
buy in latency and size?

Typical workflow:
  effinrx simulate --receiver lmmse --ebno -2:7:1 --prbs 4     baselines, with intervals
  effinrx train --model nrx-rt ...                              (or use the reference weights)
  effinrx train --model nrx-rt --distill-from nrx-large         Large -> RT distillation
  effinrx prune --model nrx-rt --pattern 2:4 --steps 200        pruning + fine-tuning
  effinrx compress --model nrx-rt --method w8a8:int8 --out q    compressed model + recipe (.npz/.json)
  effinrx sensitivity --model nrx-rt --method int8 --out sens   which layer costs the most when quantized
  effinrx compress --model nrx-rt --method qat:4 --out q4       QAT fine-tune (learned scales) + recipe
  effinrx simulate --receiver lmmse,nrx-rt,q.npz --ebno -2:7:1  what compression costs: TBLER + req. Eb/N0
  effinrx export --model nrx-rt --prbs 132                      ONNX for ModelOpt / TensorRT
  effinrx export --weights q.npz                                ONNX of a compressed model
  effinrx latency --model nrx-rt --precision fp32,int8,int8-fused --engine ort
  effinrx report                                                all claims, tolerance report, plots
"""


def _load(name: str):
    try:
        return importlib.import_module(f"effinrx.commands.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"effinrx.commands.{name}":
            return None
        raise


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the description/epilog layout and appends ``(default: X)`` to every option's help
    (argparse lists the choices in the metavar). Options whose help already states the default
    (``default ...`` in the text) or whose default is None/False are left as written."""

    def _get_help_string(self, action):
        h = action.help or ""
        d = action.default
        if (d is None or d is False or d is argparse.SUPPRESS or "%(default)" in h
                or "default" in h.lower() or not action.option_strings):
            return h
        return h + " (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="effinrx", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)

    p.add_argument("--version", action="version", version=f"effinrx {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS:
        sp = sub.add_parser(name, help=help_text, description=help_text, formatter_class=HelpFormatter)
        sp.set_defaults(_command=name)
        if name in sys.argv[1:2]:  # import only the module of the command being run
            mod = _load(name)
            if mod is not None:
                mod.add_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    saved = sys.argv
    sys.argv = [saved[0], *argv]
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    finally:
        sys.argv = saved
    if not getattr(args, "_command", None):
        parser.print_help()
        return 2
    mod = _load(args._command)
    if mod is None:
        print(f"effinrx {args._command}: not available in this version", file=sys.stderr)
        return 2
    import contextlib
    import os

    from effinrx._tf import live_filtered_stderr

    # XLA prints its INFO lines at the first jit compile, deep inside the command, not at import:
    # the filter has to cover the whole command
    quiet = args._command in TF_COMMANDS and os.environ.get("EFFINRX_TF_QUIET", "1") != "0"
    with live_filtered_stderr() if quiet else contextlib.nullcontext():
        return _run(mod, args)


def _run(mod, args) -> int:
    """Run the parsed command; EffinrxError, late OSErrors, Ctrl-C and failed input checks
    become one stderr line and an exit status."""

    try:
        if args._command in TF_COMMANDS:
            from effinrx._tf import tf

            tf()  # first import here, with the CUDA/XLA start-up noise of a CPU host filtered
        return int(mod.run(args) or 0)
    except EffinrxError as e:
        print(f"effinrx {args._command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # late write errors (disk full, a folder removed): the path, one line
        print(f"effinrx {args._command}: error: {oserror_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"effinrx {args._command}: interrupted; {_saved_on_interrupt(args)}", file=sys.stderr)
        return 130
    except Exception as e:
        line = input_check_line(e)
        if line is None:
            raise
        print(f"effinrx {args._command}: error: {line}", file=sys.stderr)
        return 1


#: commands that import TensorFlow (the CLI imports it first, quietly: effinrx._tf)
TF_COMMANDS = frozenset(n for n, _ in COMMANDS)


def _saved_on_interrupt(args) -> str:
    """What an interrupted command has kept, as far as the CLI can tell from its arguments."""
    if args._command == "simulate":
        from effinrx.commands.simulate import saved_batches

        return saved_batches(getattr(args, "cache", None))
    if args._command == "train":
        out = getattr(args, "out", None)
        where = out / args.model if out is not None and getattr(args, "model", None) else out
        return (f"the last checkpoint in {where} (every --ckpt-every steps) is kept; the same "
                "command resumes from it")
    return ("files are written atomically: those printed above as written are complete, "
            "nothing else of this run was saved")


def input_check_line(e: BaseException) -> str | None:
    """The one-line message of a failed graph-mode input check (``effinrx.receivers.checks
    .INPUT_CHECK_TAG`` in a TensorFlow ``InvalidArgumentError``), None for any other exception."""
    msg = getattr(e, "message", None) or str(e)
    if type(e).__name__ != "InvalidArgumentError" or INPUT_CHECK_TAG not in msg:
        return None
    i = msg.index(INPUT_CHECK_TAG)
    return msg[i + len(INPUT_CHECK_TAG):].splitlines()[0].strip().rstrip("]").strip()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
