#!/usr/bin/env python3
"""Generate the random-weight model libpie's tests run pie-server 0.5.2 with.

usage: python gen_model.py OUTDIR        (needs numpy and tokenizers; writes about 1.4 GiB)

pie-server 0.5.2 only loads checkpoints whose geometry matches one of its built-in model SKUs.
The smallest is Qwen3.5-0.8B in bf16 ("qwen35-d0.8b-bf16-kv-bf16"), so this writes that
geometry -- a hybrid of gated-delta-net ("linear attention") layers and one full-attention layer
in four -- as Hugging Face files: config.json, generation_config.json, tokenizer.json,
tokenizer_config.json and one model.safetensors. The weights are noise: the model produces
garbage text, which is all the tests need (they check that tokens stream, not what they say).

Tensors are streamed to disk one at a time from a pool of random bf16 values, so the script needs
little memory and is bound by disk speed rather than by the random-number generator.
"""
import json
import os
import struct
import sys

import numpy as np

# --- geometry (fixed by the SKU; the server names any tensor whose shape differs) ---------------
VOCAB = 248_320
HIDDEN = 1024
FFN = 3584
LAYERS = 24
FULL_ATTENTION_EVERY = 4  # layers 3, 7, 11, ... are full attention, the rest linear
ATTN_HEADS, KV_HEADS, HEAD_DIM = 8, 2, 256
LIN_K_HEADS, LIN_V_HEADS, LIN_K_DIM, LIN_V_DIM, CONV_KERNEL = 16, 16, 128, 128, 4

# Special tokens the Qwen chat template and pie's tokenizer checks refer to by text.
SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>",
    "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
    "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>",
]
# Qwen's pre-tokenisation pattern (contractions, letters, single digits, punctuation, spaces).
PRETOKENIZE_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                       r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
TRAINING_TEXT = [
    "Pie runs small programs next to the model and streams what they print.",
    "A client uploads an inferlet, launches it and reads its events one by one.",
    "Numbers such as 0 1 2 3 4 5 6 7 8 9 and words like hello, world and test.",
    "libpie speaks to the server from C, C++, Go, Swift and game engines.",
]
WEIGHT_SCALE = 0.05
POOL_SIZE = 4_194_301  # prime, so consecutive rows of a tensor never line up with the pool


def layer_is_full_attention(index):
    return (index + 1) % FULL_ATTENTION_EVERY == 0


def write_tokenizer(outdir):
    """Byte-level BPE with 512 entries, shaped the way pie's tokenizer loader accepts it:
    regex split then byte-level without its own regex, a byte-level decoder, all 256 byte symbols
    in the alphabet, no unknown token."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import processors, trainers

    byte_level = dict(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(**byte_level),
    ])
    tokenizer.decoder = decoders.ByteLevel(**byte_level)
    tokenizer.post_processor = processors.ByteLevel(**byte_level)
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(TRAINING_TEXT * 25, trainer)
    tokenizer.save(os.path.join(outdir, "tokenizer.json"))
    ids = {t: tokenizer.token_to_id(t) for t in ("<|im_end|>", "<|endoftext|>")}
    write_json(outdir, "tokenizer_config.json", {
        "tokenizer_class": "Qwen2Tokenizer", "bos_token": None, "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>", "model_max_length": 8192})
    write_json(outdir, "generation_config.json", {
        "do_sample": False, "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]]})
    return tokenizer.get_vocab_size(), ids["<|im_end|>"]


def write_config(outdir, eos_id):
    layer_types = ["full_attention" if layer_is_full_attention(i) else "linear_attention"
                   for i in range(LAYERS)]
    text_config = {
        "model_type": "qwen3_5_text", "dtype": "bfloat16", "vocab_size": VOCAB,
        "hidden_size": HIDDEN, "intermediate_size": FFN, "num_hidden_layers": LAYERS,
        "hidden_act": "silu", "rms_norm_eps": 1e-6, "max_position_embeddings": 8192,
        "tie_word_embeddings": True, "eos_token_id": eos_id,
        "layer_types": layer_types, "full_attention_interval": FULL_ATTENTION_EVERY,
        "num_attention_heads": ATTN_HEADS, "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM,
        "attention_bias": False, "attn_output_gate": True,
        "linear_num_key_heads": LIN_K_HEADS, "linear_num_value_heads": LIN_V_HEADS,
        "linear_key_head_dim": LIN_K_DIM, "linear_value_head_dim": LIN_V_DIM,
        "linear_conv_kernel_dim": CONV_KERNEL,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10_000_000,
                            "partial_rotary_factor": 0.25, "mrope_interleaved": True,
                            "mrope_section": [11, 11, 10]},
    }
    write_json(outdir, "config.json", {
        "architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
        "tie_word_embeddings": True, "text_config": text_config})


def write_json(outdir, name, value):
    with open(os.path.join(outdir, name), "w") as f:
        json.dump(value, f, indent=1)


def tensor_plan(tokenizer_vocab):
    """(name, shape, fill) for every tensor. fill is "noise", "zeros" (RMS norms stored as an
    offset from 1), "ones", "decay" (the gated-delta-net A_log), or "embedding" (noise in the rows
    the tokenizer can produce, zeros elsewhere so those ids never win a greedy pick)."""
    prefix = "model.language_model."
    plan = [(prefix + "embed_tokens.weight", (VOCAB, HIDDEN), ("embedding", tokenizer_vocab)),
            (prefix + "norm.weight", (HIDDEN,), "zeros")]
    lin_k, lin_v = LIN_K_HEADS * LIN_K_DIM, LIN_V_HEADS * LIN_V_DIM
    for i in range(LAYERS):
        layer = f"{prefix}layers.{i}."
        plan += [(layer + "input_layernorm.weight", (HIDDEN,), "zeros"),
                 (layer + "post_attention_layernorm.weight", (HIDDEN,), "zeros"),
                 (layer + "mlp.gate_proj.weight", (FFN, HIDDEN), "noise"),
                 (layer + "mlp.up_proj.weight", (FFN, HIDDEN), "noise"),
                 (layer + "mlp.down_proj.weight", (HIDDEN, FFN), "noise")]
        if layer_is_full_attention(i):
            attn = layer + "self_attn."
            plan += [(attn + "q_proj.weight", (2 * ATTN_HEADS * HEAD_DIM, HIDDEN), "noise"),  # query + gate
                     (attn + "k_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN), "noise"),
                     (attn + "v_proj.weight", (KV_HEADS * HEAD_DIM, HIDDEN), "noise"),
                     (attn + "o_proj.weight", (HIDDEN, ATTN_HEADS * HEAD_DIM), "noise"),
                     (attn + "q_norm.weight", (HEAD_DIM,), "zeros"),
                     (attn + "k_norm.weight", (HEAD_DIM,), "zeros")]
        else:
            lin = layer + "linear_attn."
            conv_channels = 2 * lin_k + lin_v  # q, k and v go through the short convolution
            plan += [(lin + "in_proj_qkv.weight", (conv_channels, HIDDEN), "noise"),
                     (lin + "in_proj_z.weight", (lin_v, HIDDEN), "noise"),
                     (lin + "in_proj_a.weight", (LIN_V_HEADS, HIDDEN), "noise"),
                     (lin + "in_proj_b.weight", (LIN_V_HEADS, HIDDEN), "noise"),
                     (lin + "conv1d.weight", (conv_channels, 1, CONV_KERNEL), "noise"),
                     (lin + "dt_bias", (LIN_V_HEADS,), "ones"),
                     (lin + "A_log", (LIN_V_HEADS,), "decay"),
                     (lin + "norm.weight", (LIN_V_DIM,), "ones"),
                     (lin + "out_proj.weight", (HIDDEN, lin_v), "noise")]
    return sorted(plan)


def to_bf16(values):
    """float32 -> bf16 bit patterns (round to nearest even)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounding = np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return ((bits + rounding) >> np.uint32(16)).astype("<u2")


class NoiseSource:
    """Cycles through a fixed pool of random bf16 values from a per-tensor starting point."""

    def __init__(self, seed=20261130):
        self.rng = np.random.default_rng(seed)
        self.pool = to_bf16(self.rng.standard_normal(POOL_SIZE, dtype=np.float32) * WEIGHT_SCALE)

    def write(self, f, count):
        pos = int(self.rng.integers(POOL_SIZE))
        while count:
            take = min(count, POOL_SIZE - pos)
            f.write(self.pool[pos:pos + take].tobytes())
            count -= take
            pos = 0


def write_weights(outdir, plan):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape, _ in plan:
        size = 2 * int(np.prod(shape))
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # data starts 8-byte aligned
    noise = NoiseSource()
    with open(os.path.join(outdir, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for name, shape, fill in plan:
            count = int(np.prod(shape))
            if fill == "noise":
                noise.write(f, count)
            elif fill == "zeros":
                f.write(bytes(2 * count))
            elif fill == "ones":
                f.write(to_bf16(np.ones(count, np.float32)).tobytes())
            elif fill == "decay":
                f.write(to_bf16(np.log(np.linspace(1.0, 8.0, count, dtype=np.float32))).tobytes())
            elif fill[0] == "embedding":
                live_rows = fill[1]
                noise.write(f, live_rows * shape[1])
                f.write(bytes(2 * (shape[0] - live_rows) * shape[1]))
            else:
                raise ValueError(f"unknown fill {fill!r} for {name}")
        if f.tell() != 8 + len(header_bytes) + offset:
            raise RuntimeError("safetensors size does not match its header")
    return offset


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2])
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    tokenizer_vocab, eos_id = write_tokenizer(outdir)
    write_config(outdir, eos_id)
    plan = tensor_plan(tokenizer_vocab)
    size = write_weights(outdir, plan)
    print(f"gen_model: {len(plan)} tensors, {size / 2**30:.2f} GiB of bf16, "
          f"tokenizer with {tokenizer_vocab} entries -> {outdir}")


if __name__ == "__main__":
    main()
