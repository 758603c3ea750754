"""The comparison protocol: grids and studies, tuning, edge probes, extending runs, running cells, plans."""
