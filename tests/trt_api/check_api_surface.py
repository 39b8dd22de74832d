"""Check what effinrx.engines.tensorrt uses of TensorRT against the real Python bindings.

Run by ``.ci/trt-api`` in a venv holding only ``tensorrt-cu12-bindings==<version>`` and numpy, with
stand-in native libraries (``stub_trt.c``: every C entry point returns NULL). It checks that every
class, method/property, enum member and builder/network flag listed in ``TRT_API`` exists, that the
build plan of every precision uses only flags this version has, and that ``trt.nptype`` maps the IO
dtypes the engine allocates. Nothing is built or run: the stand-in libraries cannot.

Usage: python tests/trt_api/check_api_surface.py EXPECTED_VERSION
"""
import itertools
import sys


def main(expected: str) -> int:
    from effinrx.engines import tensorrt as T
    from effinrx.engines.trtexec import PRECISIONS
    from effinrx.errors import ConfigError

    trt = T.import_tensorrt()
    if trt.__version__ != expected:
        print(f"trt-api: imported TensorRT {trt.__version__}, expected {expected}")
        return 1
    missing, checked = [], 0
    for owner, names in T.TRT_API.items():
        obj = trt if owner == "" else getattr(trt, owner, None)
        if obj is None:
            missing.append(owner)
            continue
        for n in names:
            checked += 1
            if not hasattr(obj, n):
                missing.append(f"{owner}.{n}" if owner else n)
    plans, refused = 0, []
    for prec, qdq, sparse in itertools.product(PRECISIONS, (False, True), (False, True)):
        try:
            p = T.plan(trt.__version__, prec, explicit_qdq=qdq, sparse=sparse)
        except ConfigError as e:
            refused.append(f"{prec}{' qdq' if qdq else ''}: {str(e).split(';')[0]}")
            continue
        plans += 1
        for f in p.builder_flags:
            checked += 1
            if not hasattr(trt.BuilderFlag, f):
                missing.append(f"BuilderFlag.{f} (plan {prec}, qdq={qdq}, sparse={sparse})")
        for f in p.network_flags:
            checked += 1
            if not hasattr(trt.NetworkDefinitionCreationFlag, f):
                missing.append(f"NetworkDefinitionCreationFlag.{f} (plan {prec}, qdq={qdq})")
    for dt in T.TRT_API["DataType"]:
        checked += 1
        try:
            trt.nptype(getattr(trt.DataType, dt))
        except Exception as e:
            missing.append(f"nptype(DataType.{dt}): {type(e).__name__}: {e}")
    if missing:
        print(f"trt-api: TensorRT {trt.__version__} lacks {len(missing)} of what the engine uses: "
              + "; ".join(missing))
        return 1
    print(f"trt-api: TensorRT {trt.__version__} bindings have all {checked} names the engine uses; "
          f"{plans} build plans use only existing flags; refused by design: {len(set(refused))} requests "
          f"({'; '.join(sorted(set(refused)))}). Stand-in native libraries: nothing was built or run.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
