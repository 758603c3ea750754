"""The release layouts' folder names, shared by the loaders that read them and the synthetic
generators that write them (bench.synth), so neither imports the other."""

from __future__ import annotations

from pathlib import Path

# i2b2 2010 concepts: the release tree
I2B2_2010_TRAIN_DIR = "concept_assertion_relation_training_data"
I2B2_2010_TEST_TXT_DIR = "test_data"
I2B2_2010_TEST_CON_DIR = Path("reference_standard_for_test_data") / "concepts"

# i2b2 2014 de-identification: split -> its folders
I2B2_2014_SPLIT_DIRS = {
    "train": ("training-PHI-Gold-Set1", "training-PHI-Gold-Set2"),
    "test": ("testing-PHI-Gold-fixed",),
}
