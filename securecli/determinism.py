"""An axolotl plugin that makes the LoRA initialisation reproducible: same config, byte-identical adapter.

axolotl 0.19 builds the model and its LoRA layers before the HF Trainer calls `set_seed`, and PEFT draws
`lora_A` (kaiming-uniform) from torch's global generator, whose initial seed is random per process. Two
trainings of one config therefore start from different `lora_A` and end with different adapters (the
first logged loss still matches, since `lora_B` starts at zero). Seeding right before the LoRA layers are
created removes that difference. Enable it in a config with:

    plugins:
      - securecli.determinism.SeedLoraInit
"""

from __future__ import annotations

from typing import Any

from axolotl.integrations.base import BasePlugin

PLUGIN_PATH = "securecli.determinism.SeedLoraInit"


class SeedLoraInit(BasePlugin):
    """Seed python, numpy and torch with the config's `seed` just before axolotl adds the LoRA layers."""

    def pre_lora_load(self, cfg: Any, model: Any) -> None:
        """Called by axolotl after the base model is built and before PEFT creates the adapter."""
        from transformers import set_seed

        if cfg.seed is None:
            raise ValueError(f"{PLUGIN_PATH} needs `seed` in the config to make the LoRA initialisation reproducible")
        set_seed(int(cfg.seed))
