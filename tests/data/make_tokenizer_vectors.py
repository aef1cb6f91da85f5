#!/usr/bin/env python3
"""Test vectors for libawq's tokenizer from the Hugging Face `tokenizers` library itself.

Usage:  python3 tests/data/make_tokenizer_vectors.py OUT_DIR [--sp-dir DIR]

Needs only the `tokenizers` package and the standard library. Writes, under OUT_DIR:

  tokenizer-bytelevel/     Llama-3 style byte-level BPE trained here with BpeTrainer on
                           tests/data/tokenizer-corpus.txt: Sequence[Split(Llama 3 regex,
                           Isolated), ByteLevel(add_prefix_space=false, use_regex=false)],
                           ignore_merges, ByteLevel decoder, <|begin_of_text|>/<|end_of_text|>
                           (outside the model vocab, as in Llama 3), a few added tokens with
                           lstrip / single_word options, TemplateProcessing adding BOS
  tokenizer-gpt2/          GPT-2 style: plain ByteLevel pre-tokenizer (use_regex=true), merges as
                           "a b" strings, <|endoftext|>, no BOS
  tokenizer-qwen2/         Qwen2 style: NFC normalizer, Qwen2 regex (single digits), ByteLevel
  tokenizer-sp/            the SentencePiece-style tokenizer.json of ../shared/models/stories260K
                           (byte fallback), as it is
  tokenizer-sp-metaspace/  the same vocabulary with a Metaspace(prepend_scheme=first) pre-tokenizer
                           and decoder instead of the Prepend/Replace normalizer (the legacy=false
                           form)

each with tokenizer.json, vectors.json and a README.md. vectors.json:
  {"tokenizers_version": "...", "cases": [{"text": "...", "ids": [...], "ids_plain": [...],
    "decoded": "...", "decoded_skip": "..."}, ...]}
where ids = encode(text, add_special_tokens=True), ids_plain = encode(text, add_special_tokens=False),
decoded = decode(ids_plain, skip_special_tokens=False), decoded_skip = decode(ids, skip_special_tokens=True).
Copy the directories into tests/data/; tests/test_tokenizer.c then checks every case.
"""
import argparse
import json
import os
import random
import shutil
import sys

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
LLAMA3 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
          r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2 = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
         r"\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>",
            "<s>", "</s>", "<unk>", "<|tool|>", "[MASK]"]


def added(content, special, **kw):
    try:
        return AddedToken(content, special=special, normalized=False, **kw)
    except TypeError:   # tokenizers before `special=`
        return AddedToken(content, normalized=False, **kw)


def train(lines, pre_tokenizer, normalizer=None, vocab_size=1200):
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=1, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=[])
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


def edit_json(tok, fn):
    j = json.loads(tok.to_str())
    fn(j)
    return Tokenizer.from_str(json.dumps(j))


def test_strings(corpus_lines):
    s = [
        "", " ", "  ", "\n", "\n\n", "\r\n", "\t", " \t ", "a", "A", "hello", " hello", "hello ",
        "  hello  world  ", "Hello, world!", "don't", "DON'T", "we'll they've I'm you'd it's", "'s", "x's",
        "'''", "12", "123", "1234", "12345678901234567890", "3.14159", "1,000,000", "\u0663\u0664\u0665 \u0661\u0662",
        "\u00b2\u00b3", "\u216b", "\u00bd", "caf\u00e9", "cafe\u0301", "e\u0301\u0301", "A\u030a", "\u212b",
        "\u1100\u1161\u11a8", "\uac00\uac01", "\u00c5", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
        "\u4e2d\u6587\uff0c\u6807\u70b9\u3002", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8", "\U0001F600",
        "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466", "\U0001F3F3\ufe0f\u200d\U0001F308",
        "\U0001F1EB\U0001F1F7\U0001F1EF\U0001F1F5", "line1\nline2\n\nline4", "a\r\nb\r\n\r\nc",
        "tab\tseparated\tvalues", "trailing spaces   ", "   leading spaces", "\u00a0nbsp\u00a0",
        "\u3000ideographic\u3000", "\u2028line separator\u2029", "\u200bzero width\u200b", "\u180e",
        "\u0085next line", "\x7f\x01\x02control", "\u2581already metaspace", "\u2581", " \u2581 ",
        "<|begin_of_text|>Hello", "Hello<|end_of_text|>", "<|begin_of_text|><|begin_of_text|>",
        "<|end_of_text|> x", "a<|begin_of_text|>b", "<|begin_of_text", "<|tool|>call", " [MASK] ",
        "x [MASK]y", "x[MASK]", "ohm", "ohms", "an ohm here", "Ohm", "<s>", "</s>", "<unk>", "<s>Hello</s>",
        " <s> ", "<s> Hello", "<|endoftext|>", "<|im_start|>user\nhi<|im_end|>\n",
        "a" * 300, "ab" * 200, " " * 50, "\n" * 20, "word " * 100, "\t\t\tx", "x\t\t\t",
        "The quick brown fox.  Two spaces.   Three.", "snake_case and camelCase and SCREAMING_CASE",
        "email@example.com http://x.y/z?q=1", "C:\\path\\to\\file.txt", "$HOME/.config", "#include <stdio.h>",
    ]
    s += corpus_lines
    rng = random.Random(20240601)
    words = " ".join(corpus_lines).split()
    ranges = [(0x20, 0x7e), (0xa0, 0x17f), (0x300, 0x36f), (0x391, 0x3c9), (0x410, 0x44f), (0x4e00, 0x4fff),
              (0x3040, 0x30ff), (0xac00, 0xad00), (0x1100, 0x1175), (0x1f300, 0x1f64f), (0x2000, 0x206f)]
    frags = [" ", "  ", "\n", "\r\n", "\t", "'s", "'T", "123", "4567", "\u2581"] + SPECIALS
    for _ in range(200):
        parts = []
        for _ in range(rng.randint(1, 16)):
            r = rng.random()
            if r < 0.4:
                parts.append(rng.choice(words))
            elif r < 0.7:
                parts.append(rng.choice(frags))
            else:
                lo, hi = rng.choice(ranges)
                parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 4))))
        s.append("".join(parts))
    seen, out = set(), []
    for x in s:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def write(out_dir, name, tok, strings, how):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    tok.save(os.path.join(d, "tokenizer.json"))
    cases = []
    for text in strings:
        ids = tok.encode(text, add_special_tokens=True).ids
        plain = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "ids_plain": plain,
                      "decoded": tok.decode(plain, skip_special_tokens=False),
                      "decoded_skip": tok.decode(ids, skip_special_tokens=True)})
    with open(os.path.join(d, "vectors.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizers_version": tokenizers.__version__, "cases": cases}, f, ensure_ascii=False, indent=0)
        f.write("\n")
    with open(os.path.join(d, "README.md"), "w", encoding="utf-8") as f:
        f.write("# tests/data/%s\n\nMade by `python3 tests/data/make_tokenizer_vectors.py` with tokenizers %s "
                "(Python %s): %s\n\n%d cases; vocabulary of %d ids. tests/test_tokenizer.c checks every case.\n"
                % (name, tokenizers.__version__, sys.version.split()[0], how, len(cases), tok.get_vocab_size(True)))
    print("%s: %d cases, %d ids" % (d, len(cases), tok.get_vocab_size(True)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="output directory")
    ap.add_argument("--corpus", default=os.path.join(HERE, "tokenizer-corpus.txt"))
    ap.add_argument("--sp-dir", help="directory with the stories260K tokenizer.json (default: look in "
                    "../shared/models, shared/models, /work/shared/models)")
    a = ap.parse_args()
    with open(a.corpus, encoding="utf-8") as f:
        text = f.read()
    lines = [l for l in text.split("\n") if l]
    # a little more material for the trainer: the lines again, shuffled
    rng = random.Random(7)
    train_lines = lines + rng.sample(lines, len(lines))
    strings = test_strings(lines)

    # Llama 3 style
    tok = train(train_lines, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)]))
    tok = edit_json(tok, lambda j: j["model"].update(ignore_merges=True))
    tok.add_special_tokens([added("<|begin_of_text|>", True), added("<|end_of_text|>", True),
                            added("[MASK]", True, lstrip=True)])
    tok.add_tokens([added("<|tool|>", False), added("ohm", False, single_word=True)])
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    ignore = json.loads(tok.to_str())["model"].get("ignore_merges")
    write(a.out, "tokenizer-bytelevel", tok, strings,
          "Llama-3 style byte-level BPE trained on tests/data/tokenizer-corpus.txt (ignore_merges %s)." % ignore)

    # GPT-2 style
    tok = train(train_lines, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    tok = edit_json(tok, lambda j: j["model"].update(merges=[" ".join(m) if isinstance(m, list) else m
                                                             for m in j["model"]["merges"]]))
    tok.add_special_tokens([added("<|endoftext|>", True)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    write(a.out, "tokenizer-gpt2", tok, strings, "GPT-2 style byte-level BPE (ByteLevel use_regex=true).")

    # Qwen2 style
    tok = train(train_lines, pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)]),
        normalizer=normalizers.NFC())
    tok.add_special_tokens([added("<|endoftext|>", True), added("<|im_start|>", True), added("<|im_end|>", True)])
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    write(a.out, "tokenizer-qwen2", tok, strings, "Qwen2 style byte-level BPE with the NFC normalizer.")

    # SentencePiece style: the real model's tokenizer
    cands = [a.sp_dir] if a.sp_dir else [os.path.join(HERE, "..", "..", "..", "shared", "models", "stories260K"),
                                         os.path.join(HERE, "..", "..", "shared", "models", "stories260K"),
                                         "/work/shared/models/stories260K"]
    sp = next((os.path.join(c, "tokenizer.json") for c in cands if c and os.path.isfile(os.path.join(c, "tokenizer.json"))), None)
    if not sp:
        print("stories260K tokenizer.json not found (use --sp-dir): tokenizer-sp* skipped", file=sys.stderr)
        return
    tok = Tokenizer.from_file(sp)
    write(a.out, "tokenizer-sp", tok, strings, "the tokenizer.json of stories260K (SentencePiece-style BPE, "
          "byte fallback), unchanged.")

    def metaspace(j):
        j["normalizer"] = None
        j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
        j["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    try:
        tok = edit_json(Tokenizer.from_file(sp), metaspace)
    except Exception as e:  # an old tokenizers without prepend_scheme
        print("Metaspace(prepend_scheme) not supported by tokenizers %s (%s): tokenizer-sp-metaspace skipped"
              % (tokenizers.__version__, e), file=sys.stderr)
        return
    write(a.out, "tokenizer-sp-metaspace", tok, strings, "stories260K's vocabulary with Metaspace("
          "prepend_scheme=first, split=false) instead of the Prepend/Replace normalizer (legacy=false form).")


if __name__ == "__main__":
    main()
