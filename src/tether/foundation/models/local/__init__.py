"""The offline models behind the `local` backend: small, deterministic, nothing downloaded.

What they are: a TF-IDF + logistic regression ticket classifier trained at first use on the
labelled tickets shipped in `models/data/`; a rule-driven agent that reads the offered tools'
JSON schemas and the conversation; an extractive summarizer; a rubric judge. What they are not:
generative language models. They make `make demo` real and reproducible without an API key.
"""
