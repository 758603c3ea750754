"""Side-by-side benchmark against Flower's simulation engine (`make compare-flower`):
the same NCBI-disease sentences per client in both systems, wall time, peak summed PSS of the
process tree and the test F1. See bench/compare/__main__.py and docs/PERFORMANCE.md."""
