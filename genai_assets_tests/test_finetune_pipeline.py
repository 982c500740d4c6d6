"""A fine-tuned Llama-architecture folder (SmolLM2's family) opens in pipeline("text-generation", model=folder)."""

import json

import torch

from genai_assets.finetune.data import build_finetune_dataset
from genai_assets.finetune.train import finetune
from genai_assets_tests.test_finetune_support import (
    fixture_poems,
    gpt2_tokenizer,
    tiny_finetune_config,
    tiny_llama_config,
)


def test_finetuned_llama_folder_opens_in_the_pipeline(tmp_path):
    from transformers import AutoModelForCausalLM, LlamaForCausalLM, pipeline

    from genai_assets.finetune.data import prepare_tokenizer

    base = tmp_path / "base"
    tokenizer = gpt2_tokenizer()
    torch.manual_seed(0)
    config = tiny_llama_config(
        len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, num_hidden_layers=1
    )
    LlamaForCausalLM(config).save_pretrained(base)
    tokenizer.save_pretrained(base)
    prepared = gpt2_tokenizer().__class__.from_pretrained(base)
    prepare_tokenizer(prepared)
    dataset = build_finetune_dataset(fixture_poems(4, 1, 1), prepared)
    result = finetune(base, dataset, tiny_finetune_config(max_steps=1), tmp_path / "finetuned_lm")
    assert result.steps == 1

    out = tmp_path / "finetuned_lm"
    assert json.loads((out / "config.json").read_text())["model_type"] == "llama"
    poet = pipeline("text-generation", model=str(out))
    text = poet("<|startofpoem|>The rose", max_new_tokens=6, do_sample=False)[0]["generated_text"]
    model = AutoModelForCausalLM.from_pretrained(out)
    ids = poet.tokenizer("<|startofpoem|>The rose", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        greedy = model.generate(ids, max_new_tokens=6, do_sample=False)
    assert text == poet.tokenizer.decode(greedy[0]) and len(text) > len("<|startofpoem|>The rose")
