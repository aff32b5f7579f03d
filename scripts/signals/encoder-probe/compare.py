"""The Python encoder on the same texts as the probe: prints the largest difference.

    V/bin/python compare.py MODEL_DIR texts.txt rust.json
"""

import json
import sys

import torch
from transformers import AutoModel, AutoTokenizer

model_dir, texts_path, rust_path = sys.argv[1:4]
tok = AutoTokenizer.from_pretrained(model_dir)
model = AutoModel.from_pretrained(model_dir).eval()
texts = [line.rstrip("\n") for line in open(texts_path, encoding="utf-8")]
rust = json.load(open(rust_path, encoding="utf-8"))
worst = 0.0
with torch.no_grad():
    for text, theirs in zip(texts, rust, strict=True):
        batch = tok([text], truncation=True, max_length=128, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        mine = ((hidden * mask).sum(1) / mask.sum(1))[0].tolist()
        worst = max(worst, max(abs(a - b) for a, b in zip(mine, theirs, strict=True)))
print(f"{len(texts)} texts, largest difference {worst:.3g}")
