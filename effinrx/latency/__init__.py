"""Latency and throughput tables: model x precision x engine x device.

``table``: paper references and throughput arithmetic; ``build``: the ONNX variants (export, Q/DQ,
2:4) and their TensorRT options; ``measure``: timing one variant on ORT CPU / TensorRT and the
``effinrx latency`` rows; ``gate``: the latency regression gate against a golden. The timing loop
itself is :func:`effinrx.engines.base.time_interleaved`.
"""
