"""`genai-assets generate`: flags reach generation, --seed reproduces, streaming, bad input, scratch models."""

import json

import pytest
import torch

from genai_assets.cli import main
from genai_assets.generation import SamplingConfig, generate_poems, load_generator
from genai_assets_tests.test_finetune_support import prepared_gpt2_tokenizer


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    """A tiny GPT-2 folder as finetuned_lm saves it (marker/pad tokens, sampling defaults)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from genai_assets.finetune.train import save_finetuned

    tokenizer = prepared_gpt2_tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=64, n_embd=32, n_layer=1, n_head=2)
    model = GPT2LMHeadModel(config)
    folder = tmp_path_factory.mktemp("gen") / "model"
    folder.mkdir()
    stops = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<|startofpoem|>")]
    save_finetuned(
        model, tokenizer, folder, SamplingConfig(top_k=40, max_new_tokens=12), {"base_model": {}}, stops
    )
    return folder


def run(args, capsys):
    code = main(["generate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_seed_makes_cli_output_reproducible(model_folder, tmp_path, capsys):
    args = ["--model", str(model_folder), "--prompt", "The rose", "--max-new-tokens", "10"]
    outputs = []
    for index, seed in enumerate(["7", "7", "8"]):
        path = tmp_path / f"run{index}.jsonl"
        code, _, _ = run([*args, "--seed", seed, "--output", str(path)], capsys)
        assert code == 0
        outputs.append([json.loads(line)["text"] for line in path.read_text().splitlines()])
    assert outputs[0] == outputs[1] and outputs[0] != outputs[2]


def test_flags_reach_generate_and_the_jsonl_records_them(model_folder, tmp_path, capsys):
    path = tmp_path / "poems.jsonl"
    code, out, _ = run(
        [
            "--model", str(model_folder), "--prompt", "The rose", "--prompt", "O love",
            "--top-k", "5", "--top-p", "0.8", "--temperature", "0.7", "--repetition-penalty", "1.3",
            "--no-repeat-ngram-size", "2", "--num-return-sequences", "2", "--max-new-tokens", "6",
            "--seed", "1", "--output", str(path),
        ],
        capsys,
    )  # fmt: skip
    assert code == 0
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["prompt"], r["sample_index"]) for r in records] == [
        ("The rose", 0), ("The rose", 1), ("O love", 0), ("O love", 1)
    ]  # fmt: skip
    params = records[0]["params"]
    assert (params["top_k"], params["top_p"], params["temperature"]) == (5, 0.8, 0.7)
    assert (params["repetition_penalty"], params["no_repeat_ngram_size"], params["max_new_tokens"]) == (
        1.3,
        2,
        6,
    )
    assert all(r["n_new_tokens"] <= 6 and r["text"].startswith(r["prompt"]) for r in records)
    # Everything printed was streamed: each sample's text appears in the terminal output.
    assert all(r["text"] in out for r in records)


def test_saved_defaults_apply_when_flags_are_left_out(model_folder, tmp_path, capsys):
    path = tmp_path / "defaults.jsonl"
    assert (
        run(["--model", str(model_folder), "--prompt", "A", "--seed", "2", "--output", str(path)], capsys)[0]
        == 0
    )
    params = json.loads(path.read_text().splitlines()[0])["params"]
    assert (params["top_k"], params["max_new_tokens"], params["do_sample"]) == (40, 12, True)


def test_greedy_ignores_the_seed(model_folder, tmp_path, capsys):
    texts = []
    for seed in ("1", "2"):
        path = tmp_path / f"greedy{seed}.jsonl"
        args = [
            "--model",
            str(model_folder),
            "--prompt",
            "The",
            "--greedy",
            "--seed",
            seed,
            "--output",
            str(path),
        ]
        assert run(args, capsys)[0] == 0
        record = json.loads(path.read_text())
        texts.append(record["text"])
    assert texts[0] == texts[1]
    # Greedy decoding uses no temperature/top-k/top-p/seed: the record does not claim them.
    params = record["params"]
    assert params["do_sample"] is False
    assert [params[key] for key in ("temperature", "top_k", "top_p", "seed")] == [None] * 4


def test_cli_matches_plain_model_generate(model_folder):
    """The CLI path produces what transformers' generate produces for the same ids and seed."""
    generator = load_generator(model_folder)
    sampling = SamplingConfig(do_sample=False, max_new_tokens=8, repetition_penalty=1.0)
    ours = generate_poems(generator.model, generator.tokenizer, ["The rose"], sampling)[0]
    ids = torch.tensor([[50257, *generator.tokenizer("The rose")["input_ids"]]])
    plain = generator.model.generate(
        ids,
        do_sample=False,
        max_new_tokens=8,
        repetition_penalty=1.0,
        eos_token_id=[50256, 50257],
        pad_token_id=50258,
    )
    new = plain[0, ids.shape[1] :].tolist()
    new = new[: next((i for i, t in enumerate(new) if t in (50256, 50257)), len(new))]
    assert ours["text"] == "The rose" + generator.tokenizer.decode(new, skip_special_tokens=True)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--temperature", "0"], "temperature must be > 0"),
        (["--top-p", "0"], "top_p must be in"),
        (["--top-k", "-1"], "top_k must be >= 0"),
        (["--max-new-tokens", "0"], "max_new_tokens must be >= 1"),
        (["--num-return-sequences", "-2"], "num_return_sequences must be >= 1"),
    ],
)
def test_bad_sampling_values_are_named(model_folder, capsys, flags, message):
    code, _, err = run(["--model", str(model_folder), "--prompt", "x", *flags], capsys)
    assert code == 2 and message in err


def test_prompt_longer_than_context_is_an_error(model_folder, capsys):
    code, _, err = run(["--model", str(model_folder), "--prompt", "rose " * 80], capsys)
    assert code == 2 and "context is 64 tokens" in err


def test_folder_without_tokenizer_and_corrupt_weights_are_named(model_folder, tmp_path, capsys):
    import shutil

    no_tokenizer = tmp_path / "no_tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(model_folder / name, no_tokenizer / name)
    code, _, err = run(["--model", str(no_tokenizer), "--prompt", "x"], capsys)
    assert code == 2 and "has no tokenizer" in err

    corrupt = tmp_path / "corrupt"
    shutil.copytree(model_folder, corrupt)
    data = (corrupt / "model.safetensors").read_bytes()
    (corrupt / "model.safetensors").write_bytes(data[: len(data) // 3])
    code, _, err = run(["--model", str(corrupt), "--prompt", "x"], capsys)
    assert code == 2 and "Corrupt safetensors file" in err and "model.safetensors" in err

    # A missing path is an error of its own, never retried as a Hub id (issue 10).
    code, _, err = run(["--model", str(tmp_path / "missing" / "model"), "--prompt", "x"], capsys)
    assert code == 2 and "no such folder" in err and "not treated as a Hub id" in err


def save_scratch_gpt(tmp_path):
    """A tiny scratch GPT folder as scratch_transformer saves it (GPT-2 tokenizer with the marker)."""
    from genai_assets.models import loading
    from genai_assets.models.transformer import GPT, GPTConfig

    tokenizer = prepared_gpt2_tokenizer()
    tokenizer_dir = tmp_path / "tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer), block_size=32, n_layer=1, n_head=2, n_embd=16))
    folder = tmp_path / "scratch_transformer"
    loading.save_scratch_model(folder, model, tokenizer_dir, {"temperature": 0.8}, "# card\n")
    return folder, tokenizer


def test_scratch_transformer_folders_generate_too(tmp_path, capsys):
    folder, _ = save_scratch_gpt(tmp_path)
    path = tmp_path / "scratch.jsonl"
    code, out, err = run(
        [
            "--model",
            str(folder),
            "--prompt",
            "The rose",
            "--seed",
            "3",
            "--max-new-tokens",
            "5",
            "--output",
            str(path),
        ],
        capsys,
    )
    assert code == 0, err
    record = json.loads(path.read_text())
    assert record["text"].startswith("The rose") and record["text"] in out
    assert record["params"]["temperature"] == 0.8 and 0 < record["n_new_tokens"] <= 5


def test_scratch_models_decode_through_their_kv_cache_with_repetition_controls(tmp_path, capsys, monkeypatch):
    """The CLI feeds a scratch GPT the prompt once, then one token per step (its KV cache), and
    repetition controls really apply (before, every token re-fed the whole sequence and the
    controls were recorded in params but ignored)."""
    from genai_assets.generation import encode_prompt
    from genai_assets.models.gpt_decoding import GPTDecoder
    from genai_assets.models.transformer import GPT

    folder, tokenizer = save_scratch_gpt(tmp_path)
    step, forward = GPTDecoder.__call__, GPT.forward
    calls: list[tuple[list[int], bool]] = []

    def recording_step(self, tokens):  # the cached path: tokens after those in the decoder's cache
        calls.append((tokens[0].tolist(), True))
        return step(self, tokens)

    def recording_forward(self, idx, targets=None, *, cache=None):  # an uncached forward would show here
        calls.append((idx[0].tolist(), cache is not None))
        return forward(self, idx, targets, cache=cache)

    monkeypatch.setattr(GPTDecoder, "__call__", recording_step)
    monkeypatch.setattr(GPT, "forward", recording_forward)
    prompt_ids = encode_prompt(tokenizer, "The rose")
    fed_tokens = {}
    for size in ("0", "1"):
        calls.clear()
        path = tmp_path / f"ngram{size}.jsonl"
        args = ["--model", str(folder), "--prompt", "The rose", "--greedy", "--max-new-tokens", "25"]
        code, _, err = run([*args, "--no-repeat-ngram-size", size, "--output", str(path)], capsys)
        assert code == 0, err
        record = json.loads(path.read_text())
        assert record["params"]["no_repeat_ngram_size"] == int(size)
        assert calls[0] == (prompt_ids, True)  # the prompt fills the cache once ...
        assert all(len(ids) == 1 and cached for ids, cached in calls[1:])  # ... then one new token a step
        assert len(calls) == record["n_new_tokens"]  # one forward per generated token, none re-fed
        fed_tokens[size] = [token for ids, _ in calls for token in ids]
    # Greedy decoding of this random model repeats tokens; with no-repeat 1-grams it never does.
    assert len(set(fed_tokens["0"])) < len(fed_tokens["0"])
    assert len(set(fed_tokens["1"])) == len(fed_tokens["1"])


def test_course_preset_sets_the_course_settings_and_flags_still_win(model_folder, tmp_path, capsys):
    path = tmp_path / "course.jsonl"
    args = ["--model", str(model_folder), "--prompt", "The rose", "--preset", "course", "--seed", "3"]
    assert run([*args, "--output", str(path), "--quiet"], capsys)[0] == 0
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["sample_index"] for r in records] == [0, 1, 2]  # three poems per prompt
    params = records[0]["params"]
    assert (params["do_sample"], params["temperature"], params["top_k"], params["top_p"]) == (
        True,
        1.0,
        50,
        0.95,
    )
    assert (params["repetition_penalty"], params["no_repeat_ngram_size"]) == (1.2, 2)
    assert params["max_new_tokens"] == 12  # not in the preset: the folder's saved default
    path2 = tmp_path / "override.jsonl"
    assert (
        run([*args, "--temperature", "0.5", "--num-return-sequences", "1", "--output", str(path2)], capsys)[0]
        == 0
    )
    overridden = [json.loads(line) for line in path2.read_text().splitlines()]
    assert len(overridden) == 1 and overridden[0]["params"]["temperature"] == 0.5
    assert overridden[0]["params"]["no_repeat_ngram_size"] == 2


def test_unknown_preset_is_refused_by_name():
    from genai_assets.generation.presets import merge_sampling_values, sampling_preset

    with pytest.raises(ValueError, match="Unknown sampling preset 'nope'; choose one of course"):
        sampling_preset("nope")
    assert merge_sampling_values(None, {"top_k": 3, "top_p": None}) == {"top_k": 3}
    with pytest.raises(SystemExit):
        main(["generate", "--model", "m", "--prompt", "p", "--preset", "nope"])


def test_one_sampling_settings_type_with_one_off_convention():
    """generation, the decoding module and the scratch runs all use models.sampling_settings.SamplingConfig,
    whose "off" (top-k 0, top-p 1) decodes exactly as the filters switched off."""
    from genai_assets.models import sampling
    from genai_assets.models.sampling_settings import SamplingConfig as Declared

    assert SamplingConfig is Declared and sampling.SamplingConfig is Declared
    logits = torch.randn(3, 40)
    off = SamplingConfig(top_k=0, top_p=1.0, temperature=0.7, repetition_penalty=1.0).decoding_kwargs()
    assert off["top_k"] == 0 and off["top_p"] == 1.0
    assert torch.equal(sampling.filter_top_k(logits, off["top_k"]), logits)
    assert torch.equal(sampling.filter_top_p(logits, off["top_p"]), logits)
    assert SamplingConfig(do_sample=False).decoding_kwargs()["temperature"] == 0.0  # greedy
    with pytest.raises(ValueError, match="top_k must be >= 0"):
        SamplingConfig(top_k=-1)
