"""`securecli export` and `pull --export`, checked with a real llama.cpp (built by scripts/build_llama_cpp.sh).

The tiny base and its adapter go through llama.cpp's own converters; llama.cpp then decodes our chat format
with and without the LoRA, and is compared step by step with Hugging Face + PEFT.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest
import torch
from test_publish_helpers import PASSING_EVAL, RecordingHfApi, make_run
from typer.testing import CliRunner

from common.prompt import SYSTEM_PROMPT, chat_messages, chat_template
from common.provenance import sha256_file
from publish.export import (
    MODELFILE,
    OLLAMA_TEMPLATE,
    STOP_TOKENS,
    ExportError,
    converters_dir,
    gguf_fields,
    read_adapter_config,
)
from publish.hub import publish_run
from securecli.cli import build_app

REQUEST = "list running docker containers"
STEPS = 16
# Max |logit difference| between llama.cpp (f32 base + f16 LoRA, CPU) and HF + PEFT (fp32) over the 16 greedy steps,
# measured first on six adapters of this shape: 6.5e-3 to 3.4e-2 (3.4e-2 for ADAPTER_SEED 0, whose adapter moves
# the logits by up to 1.26), from llama.cpp's f16 LoRA products. The base alone (f32 GGUF) differs by 6.7e-5.
LOGIT_TOLERANCE = 0.1
BASE_LOGIT_TOLERANCE = 1e-3
ADAPTER_SEED = 0
LORA_A_STD, LORA_B_STD = 0.1, 0.8
REPO = "securecli/tiny-adapter"


def _cli(args: list[str]):
    """Run the real CLI in-process."""
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    return result


def _strengthen(adapter_dir: Path, seed: int = ADAPTER_SEED) -> None:
    """Refill lora_A and lora_B from a seeded generator, large enough to visibly change greedy decoding."""
    from safetensors.torch import load_file, save_file

    path = adapter_dir / "adapter_model.safetensors"
    generator = torch.Generator().manual_seed(seed)
    tensors = {name: torch.randn(tensor.shape, generator=generator) * (LORA_B_STD if "lora_B" in name else LORA_A_STD)
               for name, tensor in sorted(load_file(path).items())}
    save_file(tensors, path, metadata={"format": "pt"})


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> Path:
    run = make_run(tmp_path_factory.mktemp("export"), tiny_model, metrics=PASSING_EVAL)
    _strengthen(run / "adapter")
    return run


@pytest.fixture(scope="module")
def exported(run_dir: Path) -> Path:
    """`securecli export RUN --to ollama --convert-base`: base GGUF (f32), GGUF LoRA (f16), Modelfile."""
    _cli(["export", str(run_dir), "--to", "ollama", "--convert-base", "--base-outtype", "f32", "--outtype", "f16",
          "--name", "securecli-tiny"])
    return run_dir / "export"


def _prompt_ids(tiny_model: Path) -> list[int]:
    """Tokenize our chat format for REQUEST, as training and inference render it."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    return list(tokenizer.apply_chat_template(chat_messages(REQUEST), chat_template=chat_template(),
                                              add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"])


def _llama_greedy(base: Path, lora: Path | None, prompt: list[int]) -> tuple[list[int], np.ndarray]:
    """Greedy-decode STEPS tokens with llama.cpp; return them and the logits of every step."""
    from llama_cpp import Llama

    kwargs = {"lora_path": str(lora)} if lora else {}
    llm = Llama(model_path=str(base), n_ctx=512, n_threads=2, n_batch=512, logits_all=True, verbose=False, **kwargs)
    llm.eval(prompt)
    tokens, logits = [], []
    for _ in range(STEPS):
        step = np.array(llm.scores[llm.n_tokens - 1], dtype=np.float64)
        logits.append(step)
        tokens.append(int(step.argmax()))
        llm.eval([tokens[-1]])
    llm.close()
    return tokens, np.stack(logits)


def _hf_greedy(model, prompt: list[int], vocab: int) -> tuple[list[int], np.ndarray]:
    """Greedy-decode STEPS tokens with transformers (full forward per step); return tokens and logits."""
    ids = torch.tensor([prompt])
    tokens, logits = [], []
    with torch.no_grad():
        for _ in range(STEPS):
            step = model(input_ids=ids).logits[0, -1, :vocab].double().numpy()
            logits.append(step)
            tokens.append(int(step.argmax()))
            ids = torch.cat([ids, torch.tensor([[tokens[-1]]])], dim=1)
    return tokens, np.stack(logits)


def test_gguf_lora_metadata_and_tensor_names(exported: Path, run_dir: Path) -> None:
    adapter = exported / "adapter-f16.gguf"
    fields = gguf_fields(adapter)
    assert fields["general.type"] == "adapter" and fields["adapter.type"] == "lora"
    assert fields["adapter.lora.alpha"] == pytest.approx(16.0) and fields["general.architecture"] == "qwen2"
    from gguf import GGUFReader

    names = {tensor.name for tensor in GGUFReader(adapter).tensors}
    expected = {f"blk.{layer}.attn_{part}.weight.lora_{ab}"
                for layer in range(2) for part in ("q", "k", "v", "output") for ab in ("a", "b")}
    assert names == expected
    manifest = json.loads((exported / "export.json").read_text())
    assert manifest["adapter_gguf"]["sha256"] == sha256_file(adapter)
    assert manifest["adapter_gguf"]["general.type"] == "adapter"
    assert manifest["base_gguf"]["name"] == "base-f32.gguf"
    assert manifest["base_gguf"]["sha256"] == sha256_file(exported / "base-f32.gguf")
    assert manifest["adapter"]["adapter_model.safetensors"] == sha256_file(run_dir / "adapter" / "adapter_model.safetensors")
    assert manifest["ollama"]["sha256"] == sha256_file(exported / MODELFILE)
    assert manifest["llama_cpp_python"] == "0.3.36"
    assert manifest["converters"]["convert_lora_to_gguf.py"] == sha256_file(converters_dir() / "convert_lora_to_gguf.py")


def test_llama_cpp_with_lora_decodes_as_peft(exported: Path, run_dir: Path, tiny_model: Path) -> None:
    from llama_cpp import Llama
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    prompt = _prompt_ids(tiny_model)
    base_gguf, lora_gguf = exported / "base-f32.gguf", exported / "adapter-f16.gguf"
    vocab_probe = Llama(model_path=str(base_gguf), n_ctx=512, vocab_only=True, verbose=False)
    text = AutoTokenizer.from_pretrained(tiny_model).decode(prompt)
    rendered = vocab_probe.tokenize(text.encode(), add_bos=False, special=True)
    assert rendered == prompt, "llama.cpp tokenizes our chat format differently from the HF tokenizer"
    vocab = vocab_probe.n_vocab()
    vocab_probe.close()

    with_lora, llama_logits = _llama_greedy(base_gguf, lora_gguf, prompt)
    without_lora, llama_base_logits = _llama_greedy(base_gguf, None, prompt)
    assert with_lora != without_lora, "the GGUF LoRA did not change llama.cpp's output"

    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32).eval()
    hf_base_tokens, hf_base_logits = _hf_greedy(base, prompt, vocab)
    peft_model = PeftModel.from_pretrained(base, run_dir / "adapter").eval()
    hf_tokens, hf_logits = _hf_greedy(peft_model, prompt, vocab)
    assert hf_base_tokens == without_lora, "llama.cpp's base alone decodes differently from transformers"
    assert np.abs(llama_base_logits - hf_base_logits).max() <= BASE_LOGIT_TOLERANCE
    assert with_lora == hf_tokens, f"llama.cpp+LoRA {with_lora} != HF+PEFT {hf_tokens}"
    assert (llama_logits.argmax(axis=1) == hf_logits.argmax(axis=1)).all()
    largest = float(np.abs(llama_logits - hf_logits).max())
    print(f"max |logit difference| llama.cpp vs HF+PEFT over {STEPS} steps: {largest:.3g}")
    assert largest <= LOGIT_TOLERANCE, f"max |logit difference| {largest:.3g} > {LOGIT_TOLERANCE}"


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """Parse a Modelfile into (DIRECTIVE, argument) pairs; triple-quoted arguments may span lines."""
    directives, rest = [], text
    pattern = re.compile(r'\s*([A-Z]+) ("""(.*?)"""|[^\n]*)\n', re.S)
    while rest.strip():
        match = pattern.match(rest)
        assert match, f"unparsed Modelfile text: {rest[:80]!r}"
        directives.append((match[1], match[3] if match[3] is not None else match[2]))
        rest = rest[match.end():]
    return directives


ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)


def render_go_template(template: str, messages: list[dict[str, str]]) -> str:
    """Render the Go-template subset the Modelfile uses: range .Messages, .Role, .Content, string literals."""
    actions = [action.strip() for action in ACTION.findall(template)]
    allowed = {"range .Messages", "end", ".Role", ".Content"}
    assert all(a in allowed or re.fullmatch(r'"(?:[^"\\]|\\.)*"', a) for a in actions), actions
    head, body_and_tail = template.split("{{ range .Messages }}", 1)
    body, tail = body_and_tail.split("{{ end }}", 1)
    assert "{{ range" not in body and "{{ end }}" not in tail

    def fill(text: str, message: dict[str, str] | None) -> str:
        def action(match: re.Match[str]) -> str:
            word = match[1].strip()
            if word.startswith('"'):
                return json.loads(word)
            assert message is not None
            return message[word[1:].lower()]

        return ACTION.sub(action, text)

    return fill(head, None) + "".join(fill(body, m) for m in messages) + fill(tail, None)


def test_modelfile_directives_and_template_match_training(exported: Path, tiny_model: Path) -> None:
    from transformers import AutoTokenizer

    directives = parse_modelfile((exported / MODELFILE).read_text())
    names = [name for name, _ in directives]
    assert names == ["FROM", "ADAPTER", "SYSTEM", "TEMPLATE", "PARAMETER", "PARAMETER", "PARAMETER"]
    values = dict(directives[:4])
    assert values["FROM"] == "./base-f32.gguf" and (exported / values["FROM"]).is_file()
    assert values["ADAPTER"] == "./adapter-f16.gguf" and (exported / values["ADAPTER"]).is_file()
    assert values["SYSTEM"] == SYSTEM_PROMPT and values["TEMPLATE"] == OLLAMA_TEMPLATE
    parameters = [value.split(" ", 1) for name, value in directives if name == "PARAMETER"]
    assert [p for p in parameters if p[0] == "stop"] == [["stop", json.dumps(token)] for token in STOP_TOKENS]
    assert ["temperature", "0"] in parameters

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    chats = [
        [{"role": "system", "content": values["SYSTEM"]}, {"role": "user", "content": REQUEST}],
        [*chat_messages("show free disk space"), {"role": "assistant", "content": "df -h"},
         {"role": "user", "content": "and in megabytes?\nplease"}],
    ]
    for chat in chats:
        expected = tokenizer.apply_chat_template(chat, chat_template=chat_template(), add_generation_prompt=True,
                                                 tokenize=False)
        rendered = render_go_template(values["TEMPLATE"], chat)
        assert rendered == expected
        assert tokenizer(rendered)["input_ids"] == tokenizer(expected)["input_ids"]
    for token in STOP_TOKENS:
        assert len(tokenizer(token)["input_ids"]) == 1, f"{token} is not a single special token"


def test_vllm_serves_several_adapters_on_one_base(run_dir: Path, tmp_path: Path) -> None:
    second = Path(shutil.copytree(run_dir, tmp_path / "runs" / "second", symlinks=True))
    shutil.rmtree(second / "export", ignore_errors=True)
    out = tmp_path / "vllm"
    result = _cli(["export", f"bash-a={run_dir}", f"bash-b={second}", "--to", "vllm", "--out", str(out)])
    script = (out / "serve_vllm.sh").read_text()
    assert subprocess.run(["bash", "-n", str(out / "serve_vllm.sh")], check=False).returncode == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    for text in (script, result.output):
        assert "vllm serve" in text and manifest["base_model"]["name"] in text and "--enable-lora" in text
    command = script.split("exec ", 1)[1].split()
    lora = command[command.index("--lora-modules") + 1:command.index("--lora-modules") + 3]
    assert lora == [f"bash-a={(run_dir / 'adapter').resolve()}", f"bash-b={(second / 'adapter').resolve()}"]
    assert command[command.index("--max-lora-rank") + 1] == "8" and command[command.index("--max-loras") + 1] == "2"
    assert (out / "chat_template.jinja").read_text() == chat_template()
    assert "--model bash-a" in result.output and "--model bash-b" in result.output

    manifest["base_model"]["name"] = "Qwen/another-base"
    (second / "manifest.json").write_text(json.dumps(manifest))
    refused = CliRunner().invoke(build_app(), ["export", str(run_dir), str(second), "--to", "vllm", "--out", str(out)])
    assert refused.exit_code == 2 and "different bases" in refused.output


def test_unsupported_adapter_options_are_refused(run_dir: Path, tmp_path: Path) -> None:
    adapter = Path(shutil.copytree(run_dir / "adapter", tmp_path / "adapter"))
    config = json.loads((adapter / "adapter_config.json").read_text())
    for field, value in (("use_rslora", True), ("rank_pattern", {"q_proj": 4}), ("use_dora", True)):
        (adapter / "adapter_config.json").write_text(json.dumps({**config, field: value}))
        with pytest.raises(ExportError, match=rf"adapter_config.json: field '{field}' is set"):
            read_adapter_config(adapter)
    (adapter / "adapter_config.json").write_text("{\n  nope")
    with pytest.raises(ExportError, match="line 2: not valid JSON"):
        read_adapter_config(adapter)


def test_pull_export_ollama_in_one_step(
    run_dir: Path, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_not_real")
    cache, out = tmp_path / "hub", tmp_path / "local"
    plan = publish_run(run_dir, REPO, api=RecordingHfApi(cache))
    recorded = json.loads((exported / "export.json").read_text())
    assert recorded["adapter_gguf"]["sha256"] in plan.card and recorded["base_gguf"]["sha256"] in plan.card
    assert "fits base GGUF | `base-f32.gguf`" in plan.card
    result = _cli(["pull", f"{REPO}@{plan.tag}", "--cache-dir", str(cache), "--export", "ollama", "--out", str(out),
                   "--base-gguf", str(exported / "base-f32.gguf")])
    directives = dict(parse_modelfile((out / MODELFILE).read_text())[:4])
    assert directives["FROM"] == str((exported / "base-f32.gguf").resolve())
    assert directives["ADAPTER"] == "./adapter-f16.gguf"
    assert gguf_fields(out / "adapter-f16.gguf")["adapter.type"] == "lora"
    assert "ollama create tiny-adapter" in result.output and "--model tiny-adapter" in result.output
    assert json.loads((out / "export.json").read_text())["base_gguf"]["sha256"] == sha256_file(exported / "base-f32.gguf")


def test_ollama_library_base_by_default(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "library"
    result = _cli(["export", str(run_dir), "--to", "ollama", "--outtype", "bf16", "--out", str(out)])
    directives = dict(parse_modelfile((out / MODELFILE).read_text())[:4])
    assert directives["FROM"] == "qwen2.5-coder:7b-instruct" and directives["ADAPTER"] == "./adapter-bf16.gguf"
    recorded = json.loads((out / "export.json").read_text())
    assert recorded["base_gguf"]["sha256"] is None and "ollama library" in recorded["base_gguf"]["source"]
    assert recorded["adapter_gguf"]["outtype"] == "bf16" and recorded["adapter_gguf"]["general.type"] == "adapter"
    short = json.loads((run_dir / "manifest.json").read_text())["config_hash"][:12]
    assert f"ollama create securecli-{short}" in result.output
    refused = CliRunner().invoke(build_app(), ["export", str(run_dir), "--to", "ollama", "--out", str(out), "--try", "ls"])
    assert refused.exit_code == 2 and "--try needs a local base GGUF" in refused.output
