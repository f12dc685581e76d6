"""AIOps skills exposed as intentos apps: log reading, parsing, anomaly detection and log quality."""
