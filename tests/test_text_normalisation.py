"""Text normalisation on the one decode path: Unicode forms, digits of every script and keycap emoji for every
model; the digits task's other words for its numbers only for models that carry them (config ``text_aliases``);
and a note, with ``evidence: False``, when a text names a number the model has no class for or cannot be read."""

import pytest

import fusion
from fusion.data.digits import TEXT_ALIASES
from fusion.features import item_key
from fusion.inputs import decode_text
from fusion.model import decode_options
from fusion.textnorm import apply_aliases, no_evidence, normalize

DIGITS = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def shipped():
    """The shipped default (digits-attention), whose config carries the digits task's text aliases."""
    return fusion.load_model(device="cpu")


@pytest.mark.parametrize("text, expected", [
    ("٧", "7"), ("７", "7"), ("७", "7"), ("it's a ٣", "it's a 3"),  # Arabic-Indic, full-width, Devanagari
    ("9\ufe0f\u20e3", "9"), ("9\u20e3", "9"), ("seven\ufe0f", "seven"),  # keycaps; a stray variation selector
    ("七", "7"), ("七七七", "777"), ("〇", "0"), ("❼", "7"),  # numerals worth 0-9
    ("七十", "七十"),  # seventy: digit by digit it would read as 710
    ("ﬁve", "five"), ("⑦", "7"), ("ｓｅｖｅｎ", "seven"),  # NFKC
    ("it's a seven", "it's a seven"),
])
def test_normalize(text, expected):
    assert normalize(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("oh", "zero"), ("Nought", "zero"), ("NIL!", "zero!"), ("it's an oh", "it's an zero"), ("half a dozen", "six"),
    ("ohio", "ohio"), ("d'oh", "d'oh"), ("oh-oh", "oh-oh"), ("john", "john"),  # whole words only
    ("oh no, a seven", "oh no, a seven"), ("oh, it's 7", "oh, it's 7"),  # a class already named: an interjection
])
def test_the_digits_aliases(text, expected):
    assert apply_aliases(text, TEXT_ALIASES, DIGITS) == expected


def test_aliases_are_the_models_not_the_texts():
    """The decoder maps "oh" only when given a model's aliases; old configs and taught tasks have none."""
    assert decode_text("oh")[0] == "oh" and decode_text(" 9\ufe0f\u20e3 ")[0] == "9"
    assert decode_text("oh", TEXT_ALIASES, DIGITS)[0] == "zero"
    assert decode_text("\ufe0f")[0] is None  # nothing left to read
    assert decode_options({"labels": DIGITS}) == {}
    # The feature cache keeps its old keys without options and tells aliased text apart.
    assert item_key("text", "oh", 0.0, 0) == item_key("text", "oh", 0.0, 0, None)
    assert item_key("text", "oh", 0.0, 0) != item_key("text", "oh", 0.0, 0, {"aliases": TEXT_ALIASES})


def test_a_model_without_aliases_keeps_oh(model):
    assert fusion.predict(model, text="oh").views["text"]["input"] == "oh"


@pytest.mark.parametrize("text, expected", [("9\ufe0f\u20e3", "9"), ("9\u20e3", "9"), ("٧", "7"), ("７", "7"),
                                            ("七", "7"), ("oh", "0"), ("nought", "0"), ("nil", "0")])
def test_the_shipped_model_reads_them(shipped, text, expected):
    p = fusion.predict(shipped, text=text)
    assert p.label == expected and p.unimodal["text"]["evidence"] and not p.notes


@pytest.mark.parametrize("text, named", [("twelve", "“twelve”"), ("forty-two", "“forty-two”"), ("42", "“42”"),
                                         ("1000", "“1000”"), ("七七七 漢字", "“777”"), ("七十", "“七十”"),
                                         ("漢字", None)])
def test_a_text_that_is_no_evidence_says_so(shipped, text, named):
    p = fusion.predict(shipped, text=text)
    assert p.label is None and not p.unimodal["text"]["evidence"] and len(p.notes) == 2
    assert p.notes[0].startswith("No digit recognised")  # the model trained with negatives abstains
    assert (named in p.notes[1] and "(0–9)" in p.notes[1]) if named else "could not read" in p.notes[1]


# Digits typed in the six languages num2words writes for the digits task (fusion.data.digits.LANGUAGES).
FOREIGN_DIGITS = {"es": ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"],
                  "fr": ["zéro", "", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"],
                  "de": ["", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"],
                  "it": ["zero", "uno", "", "tre", "quattro", "cinque", "sei", "sette", "otto", "nove"],
                  "pt": ["zero", "", "dois", "três", "quatro", "cinco", "seis", "sete", "oito", "nove"],
                  "ru": ["ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"]}


@pytest.mark.parametrize("language", sorted(FOREIGN_DIGITS))
def test_digits_typed_in_other_languages_are_read_as_digits(shipped, language):
    """Every digit of the language the shipped model maps (an empty entry: the word is also an English word
    with another meaning, "un", "um", "null", "due", and is left as typed)."""
    for digit, word in enumerate(FOREIGN_DIGITS[language]):
        if word:
            assert fusion.predict(shipped, text=word).label == str(digit), (language, word)
    assert fusion.predict(shipped, text="I wrote a " + FOREIGN_DIGITS[language][7]).label == "7"


@pytest.mark.parametrize("text, named", [("doce", "“twelve”"), ("zweiundvierzig", "“forty-two”"),
                                         ("cuarenta y dos", "“forty-two”"), ("dix-sept", "“seventeen”"),
                                         ("quatre-vingt-dix", "“ninety”"), ("cien", "“hundred”"),
                                         ("двадцать", "“twenty”"), ("mille", "“thousand”")])
def test_other_numbers_typed_in_other_languages_are_no_digit(shipped, text, named):
    p = fusion.predict(shipped, text=text)
    assert p.label is None and not p.unimodal["text"]["evidence"] and named in p.notes[1]


def test_number_words_that_are_english_words_stay_english():
    for text in ("um, let me think", "the due date", "a null result", "once upon a time", "an elf", "one cent"):
        assert apply_aliases(text, TEXT_ALIASES, DIGITS) == text


def test_no_evidence_needs_numeric_labels_for_numbers():
    assert no_evidence("it's 7 or 8", ["[CLS]", "7", "or", "8", "[SEP]"], DIGITS) is None
    assert no_evidence("07", ["07"], DIGITS) is None
    assert "“7.5”" in no_evidence("7.5", ["7", ".", "5"], DIGITS)
    assert no_evidence("twelve mugs", ["twelve", "mugs"], ["mug", "cup"]) is None  # no numbers among its classes
    assert no_evidence("twelve", ["twelve"], [str(i) for i in range(21)]) is None
    assert "could not read" in no_evidence("漢字", ["[CLS]", "漢", "[UNK]", "[SEP]"], ["mug", "cup"])
