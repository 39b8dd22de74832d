"""Inference engines behind one interface (:class:`effinrx.engines.base.Engine`): ONNX Runtime on
the CPU (every CI run) and TensorRT 10.x/11.x on a GPU (the ``gpu`` extra)."""
