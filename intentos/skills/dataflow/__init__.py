"""Dataflow scaling: runtime prediction (Ernest, Bellamy) and dynamic rescaling (Enel) of Spark-style jobs."""
