"""The Numenta Anomaly Benchmark: scorer (v1.1 sweeper method) and corpus harness."""
