"""A converted file tried in the device's interpreter in a child process before anything in the converter
reads it. A graph from elsewhere can become a TFLite file that the interpreter does not refuse but
aborts on (a quantized pad value of -inf did, at ``allocate_tensors``): in the converter's own process
that kills the command with no word of what went wrong and leaves the file at ``--out``. In a child,
the crash is a refusal that names the file and the signal, and quantize takes the file back."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from .errors import ModelSourceError

TRY_S = 120.0
# loads, allocates and runs the file once on a mid-grey input of its own type and shape
TRY = """
import sys
import numpy as np
from emocast.device.perception.tflite import load_interpreter
it, _ = load_interpreter(sys.argv[1], threads=1)
d = it.get_input_details()[0]
it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
it.invoke()
"""


def check_runs_on_device(model_path: Path, out_path: Path) -> None:
    """Refuse (``ModelSourceError``; ``quantize.nothing_left_on_failure`` removes ``out_path`` and its card)
    a file the device's interpreter crashes on, cannot load, or does not finish in ``TRY_S``."""
    try:
        res = subprocess.run([sys.executable, "-c", TRY, str(out_path)], capture_output=True, text=True,
                             timeout=TRY_S)
        code, said = res.returncode, res.stderr.strip().splitlines()
    except subprocess.TimeoutExpired:
        code, said = None, [f"no answer in {TRY_S:g} s"]
    if code == 0:
        return
    if code is not None and code < 0:
        how = f"the device's interpreter crashes on it ({signal.Signals(-code).name})"
    else:
        how = f"the device's interpreter cannot run it ({said[-1] if said else f'exit {code}'})"
    raise ModelSourceError(f"{model_path}: the converted file was tried before use and {how}: nothing written")
