"""``import effinrx`` (and the CLI's --help) must not import TensorFlow, ONNX or TensorRT."""
import subprocess
import sys

HEAVY = ("tensorflow", "sionna", "onnx", "onnxruntime", "tensorrt", "torch", "modelopt", "scipy")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_import_effinrx_is_cheap():
    mods = _modules_after("import effinrx, os\nassert os.environ['TF_USE_LEGACY_KERAS'] == '1'")
    assert not [m for m in HEAVY if m in mods]


def test_cli_parser_is_cheap():
    mods = _modules_after("from effinrx import cli\ncli.build_parser()")
    assert not [m for m in HEAVY if m in mods]
