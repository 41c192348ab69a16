"""Language names, and XNLI's languages and labels for the code that is about XNLI itself (the
paper's tables, PAWS-15, the synthetic sample, e5-small's fitting text). Everything else reads
the run's task (mpt_engine.tasks), of which XNLI is the first."""

from mpt_engine.tasks import load_task

_XNLI = load_task("xnli")
XNLI_LANGUAGES = _XNLI.languages
SOURCE_LANGUAGE = _XNLI.source_language
TARGET_LANGUAGES = _XNLI.target_languages
XNLI_TEST_SIZE = _XNLI.test_size  # test examples per language
# The label order of the hub dataset `facebook/xnli` (0, 1, 2).
LABELS = _XNLI.labels

LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fr": "French", "hi": "Hindi", "ja": "Japanese", "ko": "Korean",
    "ru": "Russian", "sw": "Swahili", "th": "Thai", "tr": "Turkish", "ur": "Urdu",
    "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip
