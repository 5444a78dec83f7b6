"""Run identity, LoRA merge, model card, Hub publish and pull, reproduce."""
