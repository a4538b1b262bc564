"""Languages the workflow knows: ISO 639-1 code -> English name (paper: 6 + 4 low-resource)."""

from mwork.errors import MworkError

LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "zh": "Chinese",
    "es": "Spanish",
    "ru": "Russian",
    "vi": "Vietnamese",
    "th": "Thai",
    "ar": "Arabic",
    "sw": "Swahili",
    "ja": "Japanese",
    "it": "Italian",
    "pt": "Portuguese",
    "id": "Indonesian",
    "ms": "Malay",
    "bn": "Bengali",
    "te": "Telugu",
    "hi": "Hindi",
    "ko": "Korean",
    "tr": "Turkish",
}


def check_language(code: str) -> str:
    """Return `code` if known, else a one-line error listing the known codes."""
    if code not in LANGUAGES:
        raise MworkError(f"unknown language '{code}'", f"use one of {', '.join(sorted(LANGUAGES))}")
    return code


# The paper's order (Tables 2-17): its six languages, then the four low-resource ones.
LANG_ORDER: tuple[str, ...] = ("en", "de", "fr", "zh", "es", "ru", "vi", "th", "ar", "sw")


def lang_sort_key(lang: str) -> tuple[int, str]:
    """Paper order (en, de, fr, zh, es, ru, ...) first, then alphabetical."""
    return (LANG_ORDER.index(lang), "") if lang in LANG_ORDER else (len(LANG_ORDER), lang)
