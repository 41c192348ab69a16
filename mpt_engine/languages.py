"""The 15 XNLI languages and the three NLI labels."""

XNLI_LANGUAGES = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip
SOURCE_LANGUAGE = "en"
TARGET_LANGUAGES = tuple(lang for lang in XNLI_LANGUAGES if lang != SOURCE_LANGUAGE)
XNLI_TEST_SIZE = 5010  # test examples per language

LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fr": "French", "hi": "Hindi", "ru": "Russian", "sw": "Swahili",
    "th": "Thai", "tr": "Turkish", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip

# The label order of the hub dataset `facebook/xnli` (0, 1, 2); every label index in mpt uses it.
LABELS = ("entailment", "neutral", "contradiction")
