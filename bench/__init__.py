"""Layer-skipping federated fine-tuning benchmark for clinical NLP."""

__version__ = "0.1.0"
