"""Train the learned escalation-signal model that Countersign builds in.

    bash scripts/signals/train.sh            # writes crates/core/model/signals.json.gz

A logistic regression per signal category over TF-IDF features of a message: words, pairs
of words and the 3- to 5-letter pieces of each word (so a typo or a second-language
spelling still shares most of its pieces with a known word). The model is data: the
feature list with its IDF and one weight per category, the intercepts, and check vectors
(texts and the probabilities this script computes for them) that the Rust side must
reproduce (`countersign_core::learned`, its tests).

Only the development parts and some of the parts already scored are trained on. The
held-out parts (`holdout-7.jsonl` to `holdout-19.jsonl`) are never read here: the script
refuses them. The Unicode version of the
Python that trains is recorded (`trained_with`): letters, NFKC forms and case pairs newer
than it are read differently by the Rust side, whose tables are newer.
"""

import argparse
import gzip
import hashlib
import json
import math
import os
import sys
import unicodedata

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

CATEGORIES = ["self_harm", "violence", "legal", "chargeback", "account_takeover", "third_party_data", "minors"]
SETS = [
    "dev", "test", "holdout", "dev-chat", "dev-mail", "holdout-2", "holdout-3", "dev-dm", "dev-market", "dev-near",
    "dev-ordinary", "holdout-4", "dev-implicit", "dev-voice", "dev-letters", "holdout-5", "dev-social", "dev-formal",
    "dev-near-2", "holdout-6", "dev-implicit-2", "dev-short", "dev-threads",
]
# Never trained on: the scored parts neither model has seen, on which the models' thresholds
# are chosen (docs/signals.md, steps 32, 35, 36, 40, 42, 45), holdout-14 to holdout-16 (steps 47–51), holdout-17 (step 54), holdout-18 (step 56) and holdout-19, not yet scored.
HELD_OUT = {"holdout-7", "holdout-8", "holdout-9", "holdout-10", "holdout-11", "holdout-12", "holdout-13", "holdout-14", "holdout-15", "holdout-16", "holdout-17", "holdout-18", "holdout-19"}
C = 30.0  # inverse regularisation strength: chosen by leave-one-writer-out runs (docs/signals.md)
MIN_DF = 2  # a feature must occur in at least this many training messages
MAX_DF = 0.1  # and in at most this share of them (words as common as "your" or "what" teach nothing)
ROUND = 6  # decimals kept in the file; the checks are computed from the rounded numbers


def words(text):
    """Runs of letters and digits of the NFKC form, lower-cased as a whole string (the
    Rust side: `char::is_alphanumeric`, without combining marks, which `isalnum` excludes)."""
    out, cur = [], []
    for ch in unicodedata.normalize("NFKC", text).lower():
        if ch.isalnum():
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def analyzer(text):
    ws = words(text)
    feats = ["w:" + w for w in ws]
    feats += ["b:" + a + " " + b for a, b in zip(ws, ws[1:])]
    for w in ws:
        padded = " " + w + " "
        for n in (3, 4, 5):
            if len(padded) < n:
                break
            feats += ["c:" + padded[i : i + n] for i in range(len(padded) - n + 1)]
    return feats


def probabilities(text, index, idf, weights, intercepts):
    """What the Rust side computes: sublinear TF x IDF, L2-normalised, one logit per category."""
    counts = {}
    for f in analyzer(text):
        if f in index:
            counts[f] = counts.get(f, 0) + 1
    x = sorted((index[f], (1.0 + math.log(n)) * idf[index[f]]) for f, n in counts.items())
    norm = math.sqrt(sum(v * v for _, v in x))
    out = []
    for j in range(len(CATEGORIES)):
        z = intercepts[j]
        if norm > 0:
            z += sum(v / norm * weights[i][j] for i, v in x)
        out.append(1.0 / (1.0 + math.exp(-z)))
    return out


THRESHOLD = 0.8  # what the demo policy's [signal_model] min_probability says
# Parts written by the same writer are left out together.
WRITERS = {"dev": "writer 1", "test": "writer 1"}


def fit(messages):
    """The vectorizer and one fitted classifier per category."""
    vec = TfidfVectorizer(analyzer=analyzer, sublinear_tf=True, min_df=MIN_DF, max_df=MAX_DF)
    x = vec.fit_transform([m["text"] for m in messages])
    models = []
    for cat in CATEGORIES:
        y = np.array([cat in m["expect"] for m in messages])
        models.append(LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(x, y))
    return vec, x, models


def leave_one_writer_out(parts):
    """For each writer: train on the others (and every ordinary message), score that writer."""
    writers = sorted({WRITERS.get(name, name) for name in parts if name != "dev-ordinary"})
    print(f"the model alone, threshold {THRESHOLD}: recall and false handoffs on the writer left out")
    for w in writers:
        held = [m for name, ms in parts.items() if WRITERS.get(name, name) == w for m in ms]
        rest = [m for name, ms in parts.items() if WRITERS.get(name, name) != w for m in ms]
        vec, _, models = fit(rest)
        x = vec.transform([m["text"] for m in held])
        probs = np.array([clf.predict_proba(x)[:, 1] for clf in models]).T
        recall, pos, false, neg = tally(held, probs)
        print(f"  {w:<12} recall {recall}/{pos} ({100 * recall / pos:.1f} %), "
              f"false handoffs {false}/{neg} ({100 * false / neg:.1f} %)")


def tally(messages, probs, threshold=THRESHOLD):
    """At the threshold: positives whose every category is found, of all positives; messages
    that should hand nothing off in which any category is found, of all of them."""
    recall = pos = false = neg = 0
    for m, p in zip(messages, probs):
        found = {c for c, x in zip(CATEGORIES, p) if x >= threshold}
        if m.get("expect"):
            pos += 1
            recall += all(c in found for c in m["expect"])
        else:
            neg += 1
            false += bool(found)
    return recall, pos, false, neg


def score(model_path, set_path):
    """The committed model alone on a labelled set: what the Rust side computes, at THRESHOLD."""
    model = json.loads(gzip.decompress(open(model_path, "rb").read()))
    index = {row[0]: i for i, row in enumerate(model["features"])}
    idf = [row[1] for row in model["features"]]
    weights = [row[2] for row in model["features"]]
    messages = [json.loads(line) for line in open(set_path, encoding="utf-8") if line.strip()]
    probs = [probabilities(m["text"], index, idf, weights, model["intercepts"]) for m in messages]
    recall, pos, false, neg = tally(messages, probs)
    print(f"the model alone, threshold {THRESHOLD}, on {set_path}: recall {recall}/{pos}, "
          f"false handoffs {false}/{neg}")


def read_part(sets, name):
    """A part's bytes (for its hash) and its messages, every category checked."""
    path = os.path.join(sets, name + ".jsonl")
    raw = open(path, "rb").read()
    messages = []
    for n, line in enumerate(raw.decode("utf-8").splitlines(), 1):
        if line.strip():
            m = json.loads(line)
            m.setdefault("expect", [])
            bad = [c for c in m["expect"] if c not in CATEGORIES]
            if bad:
                sys.exit(f"{path}:{n}: unknown category {bad[0]}")
            messages.append(m)
    return raw, messages


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="assets/eval/signals", help="the labelled set's folder")
    ap.add_argument("--out", default="crates/core/model/signals.json.gz", help="the model, gzip-compressed JSON (its hash, what the policy names, is of the JSON)")
    ap.add_argument("--leave-one-writer-out", action="store_true", help="print how the model does on each writer it was not trained on, and write nothing")
    ap.add_argument("--score", metavar="SET", help="score the committed model (--out) alone on a labelled set at the threshold, and write nothing")
    args = ap.parse_args()
    if args.score:
        score(args.out, args.score)
        return

    messages, trained_on, parts = [], [], {}
    for name in SETS:
        if name in HELD_OUT:
            sys.exit(f"{name} is held out: it is scored, never trained on")
        raw, part = read_part(args.sets, name)
        trained_on.append({"part": name, "sha256": hashlib.sha256(raw).hexdigest()})
        messages.extend(part)
        parts[name] = part
    if args.leave_one_writer_out:
        leave_one_writer_out(parts)
        return
    texts = [m["text"] for m in messages]

    vec, x, models = fit(messages)
    features = vec.get_feature_names_out()
    idf = np.round(vec.idf_, ROUND)
    weights = np.zeros((len(features), len(CATEGORIES)))
    intercepts = []
    sk_probs = np.zeros((len(texts), len(CATEGORIES)))
    for j, clf in enumerate(models):
        weights[:, j] = np.round(clf.coef_[0], ROUND)
        intercepts.append(round(float(clf.intercept_[0]), ROUND))
        sk_probs[:, j] = clf.predict_proba(x)[:, 1]

    index = {f: i for i, f in enumerate(features)}
    idf_l = [float(v) for v in idf]
    w_l = [[float(v) for v in row] for row in weights]
    # The rounded model must say what scikit-learn's said (to rounding).
    step = max(1, len(texts) // 200)
    for i in range(0, len(texts), step):
        mine = probabilities(texts[i], index, idf_l, w_l, intercepts)
        worst = max(abs(a - b) for a, b in zip(mine, sk_probs[i]))
        if worst > 1e-3:
            sys.exit(f"the rounded model differs from scikit-learn's by {worst} on {messages[i]['id']}")

    check_texts = [texts[i] for i in range(0, len(texts), max(1, len(texts) // 24))] + [
        "",
        "!!!",
        "ÉCOUTEZ: je vais porter plainte, AVOCAT!!! 🙃",
        "kms   kms\tkms",
        "Straße İstanbul naïve café x",
        "ΟΔΟΣ ΟΔΟΣ. Σ σ ς",
        "kms\u0363 k\u0301ms",
        "ⓚⓜⓢ ＫＭＳ ｋｍｓ ﬁne",
        "मैं मरना चाहता हूँ",
        "zero\u200bwidth soft\u00adhyphen",
        "kill 🅰 myself 🅿 🄰",
    ]
    checks = [
        {
            "text": t,
            "features": analyzer(t),
            "p": [round(p, 12) for p in probabilities(t, index, idf_l, w_l, intercepts)],
        }
        for t in check_texts
    ]

    model = {
        "format": 1,
        "what": "logistic regression per category over TF-IDF (sublinear TF, smooth IDF, L2 norm) of words, word pairs and 3-5 letter pieces of words",
        "trained_with": f"scikit-learn {sklearn.__version__}, C={C}, min_df={MIN_DF}, max_df={MAX_DF}, class_weight=balanced, Python {sys.version.split()[0]} (Unicode {unicodedata.unidata_version})",
        "trained_on": trained_on,
        "messages": len(texts),
        "categories": CATEGORIES,
        "intercepts": intercepts,
        "features": [[f, idf_l[i], w_l[i]] for i, f in enumerate(features)],
        "checks": checks,
    }
    text = ["{\n"]
    keys = list(model)
    for k in keys:
        if k == "features":
            text.append('"features": [\n')
            text.append(",\n".join(json.dumps(row, ensure_ascii=False) for row in model["features"]))
            text.append("\n]")
        else:
            text.append(json.dumps(k) + ": " + json.dumps(model[k], ensure_ascii=False))
        text.append(",\n" if k != keys[-1] else "\n")
    text.append("}\n")
    data = "".join(text).encode("utf-8")
    # No time or name in the header: the same model gives the same file.
    with open(args.out, "wb") as out:
        out.write(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"{args.out}: {len(features)} features, {len(texts)} messages from {', '.join(SETS)}")
    print(f"model sha256: {hashlib.sha256(data).hexdigest()} (put it in the policy's [signal_model])")


if __name__ == "__main__":
    main()
