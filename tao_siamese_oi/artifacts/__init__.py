"""Model artifacts, in one home: checkpoints (ours and TAO's Lightning layout), exported ONNX files, engines, their
sidecars and the calibration record, read and written plain or encrypted (crypto.py), never by running code in
them (safe_load.py). Nothing here imports Lightning: deployment reads artifacts without it.
"""
