"""mpt_engine: the Multilingual Prompt Translator (MPT) and its baselines as a library.

Nothing here imports a user interface. Heavy dependencies (torch, transformers, datasets) are
imported by the modules that need them, so `import mpt_engine.config` stays cheap.
"""

__version__ = "0.1.0"
