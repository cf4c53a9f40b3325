"""The attack suite: generating genuine sessions and attacks from real media, and measuring APCER / BPCER.

Kept apart from the runtime (`deepshield.liveness`: script, signals, decision, service), which never imports it;
only the CLI's `make-attacks` and `evaluate` commands, tests and benchmarks do. `tests/test_layering.py` holds
that line.

* `suite`: the attack generators, the suite builder and its manifest
* `corpus`: genuine sessions from the shared real media (a script derived from what the person did)
* `simulate`: simulated screen flashes, screen re-capture, a photo held up as a video
* `swap`: the real-time face-swap attack (the Detect domain's swap generator, frame by frame)
* `videoio`: reading real clips and writing generated sessions as H.264
* `evaluate`: ISO/IEC 30107-3 style figures over a suite
* `motion`: how much of each trial's head motion an earlier session covers (the replay motion thresholds)
"""
