"""TensorRT on a real GPU (paper tier). Skipped, with the reason, where there is no CUDA device
(``cudaGetDeviceCount() >= 1``; TensorRT importing is not a GPU) or no TensorRT."""
import pytest

from effinrx.engines.tensorrt import tensorrt_reason

_WHY = tensorrt_reason()
if _WHY:
    pytest.skip(_WHY, allow_module_level=True)

pytestmark = [pytest.mark.paper, pytest.mark.gpu, pytest.mark.tensorrt]


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_nrx_rt_engine_matches_onnx_runtime(tmp_path, precision):
    import numpy as np

    from effinrx.engines.ort import OrtEngine
    from effinrx.engines.tensorrt import TensorRTEngine
    from effinrx.export.onnx import export_nrx_onnx

    onnx_path = export_nrx_onnx("nrx-rt", "auto", 4, tmp_path / "rt.onnx")
    ref = OrtEngine(onnx_path)
    with TensorRTEngine(onnx_path, precision, workdir=tmp_path) as eng:
        assert eng.input_shapes == ref.input_shapes
        x = ref.random_inputs(1)
        a, b = ref.run(x)["llr"], eng.run(x)["llr"]
        tol = 1e-3 if precision == "fp32" else 5e-2
        assert np.max(np.abs(a - b)) <= tol * (1 + np.max(np.abs(a)))
        graph = eng.time(n=50, warmup=10)
        assert graph["median_ms"] > 0 and eng.describe()["timing"].startswith(("cuda-graph", "enqueue ("))
        assert eng.time(n=50, warmup=10, cuda_graph=False)["median_ms"] > 0 and eng.timing_mode == "enqueue"
        copies = eng.copy_times(n=10)
        assert copies["h2d_ms"] > 0 and copies["d2h_ms"] > 0
