import subprocess
import sys


def test_import_and_help_stay_lean():
    code = ("import sys, edgekit, edgekit.recipe, edgekit.cli; "
            "heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'litert_torch', 'ai_edge_litert', 'torch_pruning', "
            "'neural_compressor', 'matplotlib', 'sklearn') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out
    help_out = subprocess.run([sys.executable, "-m", "edgekit", "--help"], capture_output=True, text=True)
    assert help_out.returncode == 0 and "run" in help_out.stdout
