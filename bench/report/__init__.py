"""Reports from stored runs only: summary, tables, figures, statistics and the reviewer's checks."""
