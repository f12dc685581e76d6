"""Log skills: streaming log readers (records), template mining (parsing), a synthetic log generator
with ground truth (generator), anomaly detectors and log-quality checks.

Submodules are imported explicitly (`from intentos.skills.logs.records import read_records`) so that
reading a log never pulls in torch or scikit-learn.
"""
