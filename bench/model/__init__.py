"""Models: loading with a task head, finding transformer blocks, shapes and FLOPs without weights."""
