"""Hugging Face configs as memflops reads them (zoo.hf.config): shipped names, published
values filled, derived sizes, errors of a local config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import memflops
from memflops.errors import SpecError, TargetNotFoundError
from memflops.frontends.targets import load_target
from memflops.params import count_params
from memflops.zoo.hf.config import make_config

pytest.importorskip("transformers")


TINY_GLM4V_TEXT = {
    "model_type": "glm4v_text", "hidden_size": 32, "intermediate_size": 64,
    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2,
    "vocab_size": 50,
    # heads of 16, half of them rotating: 8 dims, 4 frequencies = 1 + 1 + 2
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]},
}


def test_names_are_case_insensitive_and_take_repo_ids() -> None:
    assert load_target("hf:GPT2").name == "gpt2"
    assert load_target("hf:openai-community/gpt2").name == "gpt2"
    assert load_target("hf:Meta-Llama/Llama-2-7b-hf").name == "llama-2-7b"


def test_unknown_name_suggests() -> None:
    with pytest.raises(TargetNotFoundError, match="did you mean llama-2-7b") as info:
        load_target("hf:lama-2-7b")
    assert info.value.exit_code == 2


def test_local_config_errors(tmp_path: Path, write: Any) -> None:
    with pytest.raises(TargetNotFoundError, match="no such file"):
        load_target(f"hf:{tmp_path / 'missing.json'}")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(SpecError, match="not valid JSON"):
        load_target(f"hf:{bad}")
    with pytest.raises(SpecError, match="model_type 'nonesuch' is unknown"):
        load_target(f"hf:{write(tmp_path, {'model_type': 'nonesuch'})}")


def test_language_adapters_run_the_first_language(tmp_path: Path, write: Any) -> None:
    tiny = {"model_type": "xmod", "hidden_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "intermediate_size": 32, "vocab_size": 40,
            "languages": ["de_DE", "en_XX"]}
    target = load_target(f"hf:{write(tmp_path, tiny)}")
    assert target.module.config.default_language == "de_DE"


def test_published_rotary_fraction_filled(tmp_path: Path, write: Any) -> None:
    target = load_target(f"hf:{write(tmp_path, TINY_GLM4V_TEXT)}")
    # left unset, GLM-4.1V's published 0.5: without it, 8 frequencies would not split 1, 1, 2
    assert target.module.config.rope_parameters["partial_rotary_factor"] == 0.5
    # embed 50*32 = 1,600; q, k, v 3*(32*32 + 32) = 3,168; o 32*32 = 1,024;
    # gate_up 128*32 = 4,096; down 32*64 = 2,048; 5 norms 5*32 = 160: 12,096
    assert count_params(target.module).total == 12_096
    assert target.make_inputs is not None
    report = memflops.analyze(target.module, target.make_inputs(1, 4))
    assert report.uncounted_ops == ()
    q_proj = next(r for r in report.modules if r.path == "layers.0.self_attn.q_proj")
    # Linear(32 -> 32, bias) over 4 tokens: MACs 4 * 32 * 32 = 4,096; with the bias 2 * MACs
    assert q_proj.forward.macs == 4_096
    assert q_proj.forward.flops == 8_192


def test_published_fills_keep_given_values_and_reach_sub_configs() -> None:
    from memflops.zoo.hf.config import make_config

    # DeepSeek-V2-Lite's routing: 6 experts of 1 group
    config = make_config({"model_type": "deepseek_v2"}, "test")
    assert (config.num_experts_per_tok, config.n_group, config.topk_group) == (6, 1, 1)
    given = make_config({"model_type": "deepseek_v2", "num_experts_per_tok": 2}, "test")
    assert given.num_experts_per_tok == 2
    # a sub-config is matched by its class's type, though `from_dict` hands it the outer one
    outer = make_config({"model_type": "hunyuan_vl"}, "test")
    assert outer.text_config.rope_parameters["mrope_section"] == [16, 16, 16, 16]


def test_missing_head_dim_is_derived(tmp_path: Path, analyse: Any, load: Any) -> None:
    tiny = {"model_type": "ministral", "hidden_size": 32, "intermediate_size": 64,
            "num_attention_heads": 4, "num_key_value_heads": 2, "num_hidden_layers": 1,
            "vocab_size": 50, "head_dim": None}
    target = load(tmp_path, tiny)
    assert target.module.config.head_dim == 32 // 4
    analyse(target, 1, 8)


@pytest.mark.parametrize("model_type", ["timm_wrapper", "gemma3n_vision"])
def test_timm_wrapper_config_without_num_classes_builds(model_type: str) -> None:
    config = make_config({"model_type": model_type}, "test")
    assert config.num_labels == 2  # the class's default, as AutoConfig.for_model


def _hub_cache(root: Path, repo_id: str, config: dict[str, Any]) -> Path:
    """A Hugging Face hub cache as `huggingface_hub` lays it out, holding one config.json."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(config))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    return root


def _memflops(args: list[str], cache: Path) -> subprocess.CompletedProcess[str]:
    """The command line in a fresh process (the hub reads its settings at import), offline,
    on the given cache: nothing can reach the network."""
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
           "HF_HOME": str(cache.parent)}
    return subprocess.run([sys.executable, "-m", "memflops", *args], capture_output=True,
                          text=True, env=env, timeout=300, check=False)


def test_a_repository_id_is_read_from_the_hugging_face_cache(tmp_path: Path) -> None:
    """`hf:owner/name` that is not shipped goes through transformers' config loading."""
    tiny = {"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 500}
    cache = _hub_cache(tmp_path / "hub", "acme/tiny-llama", tiny)
    done = _memflops(["analyze", "hf:acme/tiny-llama", "--format", "json"], cache)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # embeddings 500 x 64 = 32,000, LM head 32,000 (untied), final norm 64; per layer:
    # q 64 x 64 = 4,096, k and v 64 x 32 = 2,048 each (2 KV heads of 16), o 4,096,
    # gate/up/down 3 x 64 x 128 = 24,576, two norms 128: 36,992; two layers 73,984
    assert report["totals"]["params"] == 32_000 + 32_000 + 64 + 2 * 36_992
    assert report["model"] == "hf:acme/tiny-llama"


def test_a_repository_id_nowhere_says_how_to_get_its_config(tmp_path: Path) -> None:
    cache = _hub_cache(tmp_path / "hub", "acme/other", {"model_type": "llama"})
    done = _memflops(["analyze", "hf:acme/missing"], cache)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert "\n" not in line
    assert "hf:acme/missing: not a shipped config" in line
    assert "hf download acme/missing config.json" in line


def test_a_config_of_a_hundred_thousand_layers_is_refused_at_once() -> None:
    """Building is linear in the layers (100,000 GPT-2 blocks took over 5 minutes and
    2.5 GB): a count past MAX_REPEATS is refused before transformers builds anything."""
    import time

    from memflops.errors import SpecError
    from memflops.zoo.hf.config import MAX_REPEATS, make_config

    started = time.perf_counter()
    with pytest.raises(SpecError, match=r"text_config\.num_hidden_layers = 100,000"):
        make_config({"model_type": "llava", "text_config": {"num_hidden_layers": 100_000}},
                    "hf:deep.json")
    assert time.perf_counter() - started < 5 and MAX_REPEATS < 100_000


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"n_layer": -1}, "n_layer = -1: a count of modules is >= 0"),  # built 0 blocks before
        ({"torch_dtype": ["float32"]}, "dtype (torch_dtype) ['float32']: expected a floating"),
        ({"torch_dtype": "int64"}, "dtype (torch_dtype) 'int64': expected a floating"),
    ],
)
def test_malformed_config_fields_are_usage_errors(fields: dict[str, object], words: str) -> None:
    from memflops.errors import SpecError
    from memflops.zoo.hf.config import make_config

    with pytest.raises(SpecError) as info:
        make_config({"model_type": "gpt2", "n_embd": 8, "n_head": 2, **fields}, "hf:c.json")
    assert words in str(info.value)
