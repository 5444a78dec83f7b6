"""Generation backends behind one interface: `hf` (transformers + PEFT), `openai`, `retrieval` (BM25)."""

from __future__ import annotations

import math
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, model_validator

from common.prompt import chat_messages, chat_template

TOKEN = re.compile(r"\w+")


@dataclass(frozen=True)
class Generation:
    """One request, the backend's raw output and the seconds it took (batch time shared evenly)."""

    request: str
    raw: str
    latency_s: float


class Backend(Protocol):
    """Anything that turns requests into raw outputs, in order."""

    name: str

    def generate(self, requests: Sequence[str]) -> list[Generation]:
        """Return one generation per request, in the same order."""
        ...


class BackendSpec(BaseModel):
    """Which backend to build and its options; fields unused by a kind keep their defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["hf", "openai", "retrieval"]
    base_model: str | None = None
    adapter: str | None = None
    batch_size: int = 8
    max_new_tokens: int = 128
    device: str = "auto"
    base_url: str | None = None
    model: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = 60.0
    concurrency: int = 8
    max_retries: int = 3
    train_path: Path | None = None

    @model_validator(mode="after")
    def _required_options(self) -> BackendSpec:
        """Fail early, naming the option a backend kind needs."""
        required = {"hf": ("base_model",), "openai": ("base_url", "model"), "retrieval": ("train_path",)}
        missing = [name for name in required[self.kind] if getattr(self, name) in (None, "")]
        if missing:
            raise ValueError(f"backend {self.kind!r} needs: {', '.join(missing)}")
        if self.batch_size < 1 or self.max_new_tokens < 1 or self.concurrency < 1:
            raise ValueError("batch_size, max_new_tokens and concurrency must be at least 1")
        if self.max_retries < 0 or self.timeout <= 0:
            raise ValueError("max_retries must be at least 0 and timeout above 0")
        return self


def make_backend(spec: BackendSpec) -> Backend:
    """Build the backend a spec describes."""
    builders: dict[str, Callable[[BackendSpec], Backend]] = {
        "hf": HFBackend,
        "openai": OpenAIBackend,
        "retrieval": RetrievalBackend,
    }
    return builders[spec.kind](spec)


def _progress(description: str, total: int):  # noqa: ANN202 - rich types are imported lazily
    """Return a transient rich progress bar and its task id."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeRemainingColumn(), transient=True)
    return progress, progress.add_task(description, total=total)


class HFBackend:
    """A transformers causal LM (plus an optional PEFT adapter) with batched greedy decoding."""

    def __init__(self, spec: BackendSpec) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec = spec
        self.name = f"hf:{spec.base_model}" + (f"+{spec.adapter}" if spec.adapter else "")
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if spec.device == "auto" else spec.device
        self.tokenizer = AutoTokenizer.from_pretrained(spec.base_model, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        model = AutoModelForCausalLM.from_pretrained(spec.base_model, dtype=dtype, device_map={"": self.device})
        if spec.adapter:
            from peft import PeftModel

            from common.hub import resolve_adapter

            model = PeftModel.from_pretrained(model, str(resolve_adapter(spec.adapter)))
        self.model = model.eval()
        self.template = chat_template()
        self.stop_ids = sorted({
            token_id for token_id in (
                self.tokenizer.eos_token_id,
                self.tokenizer.convert_tokens_to_ids("<|im_end|>"),
            ) if isinstance(token_id, int) and token_id >= 0
        })

    def prompt(self, request: str) -> str:
        """Render one request with the training chat template, ready for the assistant turn."""
        return self.tokenizer.apply_chat_template(
            chat_messages(request), chat_template=self.template, tokenize=False, add_generation_prompt=True
        )

    def generate(self, requests: Sequence[str]) -> list[Generation]:
        """Generate greedily in batches of similar prompt length; return outputs in request order."""
        prompts = [self.prompt(request) for request in requests]
        lengths = [len(self.tokenizer(prompt_text).input_ids) for prompt_text in prompts]
        order = sorted(range(len(prompts)), key=lambda index: lengths[index])
        outputs: dict[int, Generation] = {}
        progress, task = _progress(f"generating ({self.name})", len(prompts))
        with progress:
            for start in range(0, len(order), self.spec.batch_size):
                batch = order[start:start + self.spec.batch_size]
                began = time.perf_counter()
                texts = self._generate_batch([prompts[index] for index in batch])
                share = (time.perf_counter() - began) / len(batch)
                for index, text in zip(batch, texts, strict=True):
                    outputs[index] = Generation(request=requests[index], raw=text, latency_s=share)
                progress.advance(task, len(batch))
        return [outputs[index] for index in range(len(prompts))]

    def _generate_batch(self, prompts: list[str]) -> list[str]:
        """Run one left-padded greedy batch and decode only the new tokens."""
        import torch

        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        with torch.inference_mode():
            generated = self.model.generate(
                **encoded,
                max_new_tokens=self.spec.max_new_tokens,
                do_sample=False,
                eos_token_id=self.stop_ids or None,
                pad_token_id=self.tokenizer.pad_token_id,
            )
        new_tokens = generated[:, encoded["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)


class OpenAIBackend:
    """Any OpenAI-compatible chat server (vLLM, llama.cpp server, Ollama `/v1`) through the official SDK.

    The SDK retries 408/409/429/5xx replies and connection errors up to `max_retries` times with backoff
    (honouring `Retry-After`); up to `concurrency` requests are in flight, and outputs keep request order.
    """

    def __init__(self, spec: BackendSpec) -> None:
        from openai import Omit, OpenAI

        self.spec = spec
        self.name = f"openai:{spec.model}"
        api_key = os.environ.get(spec.api_key_env) or ""
        # Local servers (Ollama, vLLM) need no key: then the SDK is told to omit the Authorization header.
        self.headers = {} if api_key else {"Authorization": Omit()}
        self.client = OpenAI(
            base_url=str(spec.base_url), api_key=api_key or "no-key", timeout=spec.timeout, max_retries=spec.max_retries
        )
        self.endpoint = f"{str(spec.base_url).rstrip('/')}/chat/completions"

    def _complete(self, request: str) -> str:
        """Send one greedy chat completion (retried by the SDK) and return the assistant text."""
        import openai

        try:
            completion = self.client.chat.completions.create(
                model=str(self.spec.model),
                messages=chat_messages(request),
                temperature=0.0,
                max_tokens=self.spec.max_new_tokens,
                extra_headers=self.headers,
            )
        except openai.APIStatusError as error:
            raise RuntimeError(
                f"{self.endpoint} returned HTTP {error.status_code} (after up to {self.spec.max_retries} retries): "
                f"{error.response.text[:300]}"
            ) from error
        except openai.APIConnectionError as error:
            raise RuntimeError(
                f"{self.endpoint}: {error.message} {error.__cause__ or ''} (after up to {self.spec.max_retries} retries)"
            ) from error
        try:
            return str(completion.choices[0].message.content or "")
        except (AttributeError, IndexError, TypeError) as error:
            raise RuntimeError(f"{self.endpoint}: no choices[0].message.content in the reply") from error

    def _timed(self, request: str) -> Generation:
        """Complete one request and time it, retries included."""
        began = time.perf_counter()
        raw = self._complete(request)
        return Generation(request=request, raw=raw, latency_s=time.perf_counter() - began)

    def generate(self, requests: Sequence[str]) -> list[Generation]:
        """Query the server with up to `concurrency` requests in flight; return outputs in request order."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        outputs: dict[int, Generation] = {}
        progress, task = _progress(f"querying {self.name}", len(requests))
        with progress, ThreadPoolExecutor(max_workers=self.spec.concurrency, thread_name_prefix="openai") as pool:
            futures = {pool.submit(self._timed, request): index for index, request in enumerate(requests)}
            try:
                for future in as_completed(futures):
                    outputs[futures[future]] = future.result()
                    progress.advance(task)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return [outputs[index] for index in range(len(requests))]


def load_pairs(path: Path) -> list[tuple[str, str]]:
    """Read (request, command) pairs from chat JSONL (`messages`) or NL2Bash JSONL (`nl`, `bash`)."""
    from common.jsonl import read_jsonl
    from common.prompt import request_command

    pairs = [request_command(row, path, number) for number, row in read_jsonl(path)]
    if not pairs:
        raise ValueError(f"{path}: no (request, command) pairs")
    return pairs


class BM25:
    """Okapi BM25 over lower-cased word tokens, with per-term weights precomputed at index time."""

    def __init__(self, documents: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        import numpy as np

        tokenized = [TOKEN.findall(document.lower()) for document in documents]
        lengths = np.array([len(tokens) for tokens in tokenized], dtype=np.float64)
        average = float(lengths.mean()) if len(lengths) and lengths.mean() > 0 else 1.0
        norms = k1 * (1.0 - b + b * lengths / average)
        postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for index, tokens in enumerate(tokenized):
            for term, count in Counter(tokens).items():
                postings[term].append((index, count))
        self.size = len(tokenized)
        self.weights: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for term, posting in postings.items():
            docs = np.array([index for index, _ in posting])
            counts = np.array([count for _, count in posting], dtype=np.float64)
            idf = math.log(1.0 + (self.size - len(posting) + 0.5) / (len(posting) + 0.5))
            self.weights[term] = (docs, idf * counts * (k1 + 1.0) / (counts + norms[docs]))

    def scores(self, query: str):  # noqa: ANN201 - numpy is imported lazily
        """Return the BM25 score of every document for the query (a numpy array)."""
        import numpy as np

        totals = np.zeros(self.size)
        for term in set(TOKEN.findall(query.lower())):
            if term in self.weights:
                docs, weights = self.weights[term]
                totals[docs] += weights
        return totals

    def best(self, query: str) -> int | None:
        """Return the best-scoring document (lowest index on ties), or None if no term matches."""
        totals = self.scores(query)
        if not totals.size or totals.max() <= 0.0:
            return None
        return int(totals.argmax())


class RetrievalBackend:
    """Nearest neighbour over the train split: answer with the command of the most similar request."""

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        self.name = f"retrieval:{Path(str(spec.train_path)).name}"
        self.pairs = load_pairs(Path(str(spec.train_path)))
        self.index = BM25([request for request, _ in self.pairs])
        self.fallback = Counter(command for _, command in self.pairs).most_common(1)[0][0]

    def generate(self, requests: Sequence[str]) -> list[Generation]:
        """Return the neighbour's command (the most frequent command when nothing overlaps)."""
        results: list[Generation] = []
        for request in requests:
            began = time.perf_counter()
            best = self.index.best(request)
            raw = self.fallback if best is None else self.pairs[best][1]
            results.append(Generation(request=request, raw=raw, latency_s=time.perf_counter() - began))
        return results
