"""Layer-skipping federated fine-tuning benchmark for clinical NLP."""

import os

# Nothing is fetched from a hub at run time: besides the model loaders' local_files_only,
# huggingface_hub asks the hub for a registry of agent harnesses once a process (local files or
# not) unless offline, which it reads when first imported, so this comes before any import of it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__version__ = "0.1.0"
