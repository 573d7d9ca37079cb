"""Training the local model: the examples it starts from (`examples`), the labels people and
the LLM give it (`labels`), storing, training and activating versions (`versions`), and
retraining behind a no-regression gate (`retrain`, whose docstring tells how)."""
