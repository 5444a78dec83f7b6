"""SecureCLI-Tuner: train, check and ship a small LLM that writes safe Bash."""

__version__ = "0.1.0"
