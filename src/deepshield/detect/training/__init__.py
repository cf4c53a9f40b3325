"""What builds and measures the detector, apart from what serves it: the face cache and its identity split,
training pairs (self-blends, cross-identity blends, H.264 degradation), the networks, training, checkpoints,
weight averaging, ONNX export and calibration, the face-swap set, dataset layouts and evaluation.

The runtime (`detect.base`, `registry`, `pipeline`, `aggregate`, `onnx_detector`, `service`) never imports this
package (`tests/test_layering.py`); only the CLI, the benchmarks and the liveness attack suite do.
"""
