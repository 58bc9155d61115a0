#!/usr/bin/env python3
"""The reference side of bench_tokenizer: the Hugging Face `tokenizers` library on the same
corpus and tokenizer.json, one thread, as one string and line by line. Run it where the library
is installed (it is not a dependency of kvbench):
    python3 bench/tokenizer_reference.py TOKENIZER_JSON CORPUS
"""
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer, __version__  # noqa: E402

path, corpus = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
tok = Tokenizer.from_file(path)
t1 = time.perf_counter()
text = open(corpus, encoding="utf-8").read()
print(f"tokenizers {__version__}: load {1000 * (t1 - t0):.0f} ms")
a = time.perf_counter()
n = len(tok.encode(text, add_special_tokens=False).ids)
b = time.perf_counter()
print(f"  one string:   {n:9d} tokens in {b - a:.2f} s = {n / (b - a) / 1e6:.3f} M tokens/s")
lines = text.splitlines(keepends=True)
c = time.perf_counter()
m = 0
for line in lines:
    m += len(tok.encode(line, add_special_tokens=False).ids)
d = time.perf_counter()
print(f"  line by line: {m:9d} tokens in {d - c:.2f} s = {m / (d - c) / 1e6:.3f} M tokens/s")
