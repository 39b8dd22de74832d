"""ONNX Runtime CPU engine (fp32, int8 QDQ, int4 MatMul) with op-level profiling.

The profile answers "which ops ran in int8 and where does the time go": ORT's JSON trace is
aggregated per op type, and op types that compute in integers (QLinearConv, QLinearMatMul,
ConvInteger, MatMulInteger, MatMulNBits, DynamicQuantize*) are flagged.
"""
from __future__ import annotations

import json
import os
import platform
from collections import defaultdict
from pathlib import Path


from effinrx import device
from effinrx.engines.base import Engine, time_interleaved
from effinrx.errors import ShapeError

INT_OPS = ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat",
           "MatMulNBits", "DynamicQuantizeMatMul", "QGemm", "QLinearAdd", "QLinearMul")


class OrtEngine(Engine):
    """ONNX Runtime CPU session with a fixed number of intra-op threads (default: all cores)."""

    name = "ort-cpu"

    def __init__(self, onnx_path, threads: int | None = None, optimization: str = "all",
                 profile_dir: str | Path | None = None, shapes: dict[str, tuple] | None = None):
        super().__init__(onnx_path)
        self._fixed = {k: tuple(v) for k, v in (shapes or {}).items()}  # pins dynamic dims (e.g. batch)
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or os.cpu_count() or 1
        so.inter_op_num_threads = 1
        so.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                       "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                                       "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}[optimization]
        if profile_dir is not None:
            so.enable_profiling = True
            so.profile_file_prefix = str(Path(profile_dir) / "ort_profile")
        try:
            self.session = ort.InferenceSession(str(self.onnx_path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types; report them plainly
            raise ShapeError(f"ONNX Runtime cannot load {self.onnx_path}: {e}") from None
        self.threads = so.intra_op_num_threads
        self._version = ort.__version__

    @property
    def input_shapes(self) -> dict[str, tuple]:
        out = {}
        for i in self.session.get_inputs():
            if i.name in self._fixed:
                out[i.name] = self._fixed[i.name]
                continue
            if not all(isinstance(d, int) for d in i.shape):
                raise ShapeError(f"{self.onnx_path}: input {i.name} has dynamic shape {i.shape}; export "
                                 "with fixed shapes per PRB count or pass shapes=")
            out[i.name] = tuple(i.shape)
        return out

    def run(self, inputs):
        feed = self.check_inputs(inputs)
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, feed)))

    def time(self, n: int = 50, warmup: int = 5, inputs: dict | None = None) -> dict:
        """Latency of ``n`` session runs, each timed in turn with the speed probe
        (:func:`time_beside_probe`, the one timing path of the CLI and the benchmarks); inputs are
        checked once, outside the timing. Stats of :func:`summarize_ms` plus ``probe_ms`` and the
        per-round samples."""
        feed = self.check_inputs(inputs or self.random_inputs())
        return time_beside_probe(lambda: self.session.run(None, feed), threads=self.threads, n=n,
                                 warmup=warmup)

    def describe(self) -> dict:
        from effinrx.engines.ort_selfcheck import integer_gemm_defect

        # the integer GEMM's health is part of what computed the outputs (see ort_selfcheck). The
        # model is named by its file name and what it computes (effinrx.export.digest), not by its
        # folder or bytes: a resume cache or a Ray worker then recognises the same model rebuilt in
        # another process, and never takes another model saved under the same name for it
        return {"engine": self.name, "onnxruntime": self._version, "threads": self.threads,
                "cpu": device.cpu_model(), "machine": platform.machine(), "model": self.onnx_path.name,
                "model_digest": self._digest(), "integer_gemm": integer_gemm_defect() or "exact"}

    def _digest(self) -> str:
        if getattr(self, "_content_digest", None) is None:
            from effinrx.export.digest import content_digest

            self._content_digest = content_digest(self.onnx_path)
        return self._content_digest

    def profile(self, n: int = 20, inputs: dict | None = None) -> dict:
        """Run ``n`` times with ORT profiling; return per-op-type time shares and the int8 ops.

        Needs the engine to be created with ``profile_dir``.
        """
        feed = self.check_inputs(inputs or self.random_inputs())
        for _ in range(n):
            self.session.run(None, feed)
        trace = self.session.end_profiling()
        return summarize_profile(json.loads(Path(trace).read_text(encoding="utf-8")))


def summarize_profile(events: list[dict]) -> dict:
    """Aggregate an ORT profiling trace: {op_type: {"us", "share", "count", "int"}}, total_us."""
    per = defaultdict(lambda: {"us": 0.0, "count": 0})
    for ev in events:
        if ev.get("cat") != "Node" or not str(ev.get("name", "")).endswith("_kernel_time"):
            continue
        op = ev.get("args", {}).get("op_name", "?")
        per[op]["us"] += float(ev.get("dur", 0))
        per[op]["count"] += 1
    total = sum(v["us"] for v in per.values()) or 1.0
    ops = {k: {**v, "share": v["us"] / total, "int": k in INT_OPS} for k, v in
           sorted(per.items(), key=lambda kv: -kv[1]["us"])}
    return {"ops": ops, "total_us": total, "int_share": sum(v["share"] for v in ops.values() if v["int"])}


PROBE_SHAPE = (1, 64, 14, 48)  # the NRX-RT's feature map at 4 PRBs (channels, symbols, subcarriers)


def _probe_model() -> bytes:
    """A fixed chain shaped like the NRX (seeded weights): 12 x (3x3 depthwise Conv, 1x1 Conv, Relu)
    on [1, 64, 14, 48]. Many small ops, like the receiver, so it feels the same per-op thread
    synchronisation costs that dominate small-model latency on a shared VM."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    c = PROBE_SHAPE[1]
    inits, nodes, x = [], [], "x"
    for i in range(12):
        inits += [numpy_helper.from_array((rng.standard_normal((c, 1, 3, 3)) * .3).astype(np.float32), f"dw{i}"),
                  numpy_helper.from_array((rng.standard_normal((c, c, 1, 1)) * .12).astype(np.float32), f"pw{i}")]
        nodes += [helper.make_node("Conv", [x, f"dw{i}"], [f"d{i}"], kernel_shape=[3, 3], pads=[1] * 4, group=c),
                  helper.make_node("Conv", [f"d{i}", f"pw{i}"], [f"p{i}"], kernel_shape=[1, 1]),
                  helper.make_node("Relu", [f"p{i}"], [f"r{i}"])]
        x = f"r{i}"
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "speed_probe", [vi("x", TensorProto.FLOAT, list(PROBE_SHAPE))],
                          [vi(x, TensorProto.FLOAT, list(PROBE_SHAPE))], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 9
    return m.SerializeToString()


def _probe(threads: int | None):
    """(session, feed) of the speed probe with ``threads`` intra-op threads."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or os.cpu_count() or 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(_probe_model(), so, providers=["CPUExecutionProvider"])
    return sess, {"x": np.random.default_rng(1).standard_normal(PROBE_SHAPE).astype(np.float32)}


def time_beside_probe(fn, *, threads: int | None = None, n: int = 30, warmup: int = 3) -> dict:
    """Time ``fn()`` and the speed probe in ``n`` short alternations (one call each per round, order
    flipped every round; ``fn=None``: probe only) through :func:`effinrx.engines.base.time_interleaved`,
    the one timing path of the CLI and the benchmarks.

    Returns ``summarize_ms`` of ``fn`` (empty without it) plus ``probe_ms`` (the probe's best),
    ``probe_median_ms`` and the per-round samples that the rank-test gate
    (:func:`effinrx.latency.gate.latency_gate`) reads. Why alternate: timing the probe once after the model
    left a speed-state change in between uncorrected (a CI run's int8-fused RT was 2.0x its golden
    while the probe read 1.2x)."""
    sess, feed = _probe(threads)
    return time_interleaved(fn, lambda: sess.run(None, feed), rounds=n, warmup=warmup)
