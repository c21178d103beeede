"""Text normalisation before the text encoder, and the check that an encoded text is evidence at all.

``normalize`` runs on every text on the one decode path (``fusion.inputs.load_text``), so the app, the API,
the CLI, training and evaluation feed the encoder the same string. ``apply_aliases`` runs only for a model
whose task lists other words for its classes (config field ``text_aliases``: the digits models map "oh",
"nought", "nil" ... to "zero"), so a taught task about mugs keeps its "oh". ``no_evidence`` says when a text
names a number that is not a class, or is mostly characters the encoder cannot read.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import groupby

KEYCAP = re.compile("([0-9#*])\ufe0f?\u20e3")  # 9️⃣, and 9⃣ without the emoji presentation selector
VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
OTHER_DIGITS = re.compile(r"(?![0-9])\d")  # \d is every script's decimal digits: ٧ (Arabic-Indic), ७ (Devanagari)
# A whole word: "oh" in "oh!" but not in "ohio", "d'oh" or "oh-oh".
WHOLE_WORD = r"(?<![\w'’-])(?:{})(?![\w'’-])"
NUMBER = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:-[^\W\d_]+)*")  # 42, 1,000, 7.5, seven, forty-two
ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
        "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen")
TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# English number words and their values, to check the numbers a text names against numeric labels.
CARDINALS = {**{word: i for i, word in enumerate(ONES)}, **{word: 20 + 10 * i for i, word in enumerate(TENS)},
             "fourty": 40, "dozen": 12, "hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}
UNKNOWN_TOKENS = {"[UNK]", "<unk>"}
SPECIAL_TOKENS = {"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>"}


def normalize(text: str) -> str:
    """Any text -> the form the encoder reads: Unicode NFKC (full-width ７ -> 7, ⑦ -> 7, ﬁ -> fi), keycap
    emoji -> their character (9️⃣ and 9⃣ -> 9), variation selectors dropped, decimal digits of every script
    -> ASCII (٧ ७ -> 7), then each run of other numeral characters worth 0-9 (七, 〇, ❼) -> ASCII digits.

    A run holding a larger numeral (七十, seventy) is left as written: digit by digit it would read as
    another number (70 as "710"); MiniLM reads most such characters as [UNK], which ``no_evidence`` notes.
    """
    text = unicodedata.normalize("NFKC", text)
    if text.isascii():  # most texts: nothing below can change them
        return text
    text = VARIATION_SELECTORS.sub("", KEYCAP.sub(r"\1", text))
    text = OTHER_DIGITS.sub(lambda m: str(unicodedata.decimal(m.group())), text)
    runs = []
    for numeral, chars in groupby(text, key=lambda c: not c.isascii() and c.isnumeric()):
        run = "".join(chars)
        values = [unicodedata.numeric(c, -1) for c in run] if numeral else []
        runs.append("".join(str(int(v)) for v in values) if values and all(v in range(10) for v in values) else run)
    return "".join(runs)


def visible(text: str) -> bool:
    """Whether ``text`` has a character that shows: not whitespace, not a control or format character (zero-width
    spaces and joiners, direction marks, soft hyphens), which the text encoder's tokenizer drops."""
    return any(not c.isspace() and unicodedata.category(c) not in ("Cc", "Cf") for c in text)


def words_pattern(words) -> re.Pattern:
    """Any of ``words`` as a whole word, in any case (the longest first, so "half a dozen" beats "half")."""
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(WHOLE_WORD.format(alternatives), re.IGNORECASE)


def apply_aliases(text: str, aliases: dict[str, list[str]] | None, labels=()) -> str:
    """Replace every other way of writing a class word by that word, as whole words in any case.

    aliases: {word the model was trained on: [other ways to write it]} (config field ``text_aliases``).
    labels: the model's labels. A text that already uses one of the words or names a label is returned as it
    is: there the alias is more likely an interjection ("oh no, a seven", "oh, it's 7").
    """
    table = {other.lower(): word for word, others in (aliases or {}).items() for other in others}
    if not table or words_pattern([*aliases, *labels]).search(text):
        return text
    return words_pattern(table).sub(lambda m: table.get(m.group().lower(), m.group()), text)


def value(number: str) -> float | None:
    """ "42", "1,000", "7.5", "seven", "forty-two", "十" -> its value; None for a word that is not a number."""
    if number.isnumeric() and not number.isdigit():  # numerals ``normalize`` left as written: 十, 七十
        return unicodedata.numeric(number) if len(number) == 1 else float("nan")  # a compound is not one digit
    if number[0].isdigit():
        try:
            return float(number.replace(",", ""))
        except ValueError:  # "1.000.000": no single value, so not a class either
            return float("nan")
    parts = number.lower().split("-")
    return float(sum(CARDINALS[p] for p in parts)) if all(p in CARDINALS for p in parts) else None


def no_evidence(text: str, tokens: list[str], labels: list[str]) -> str | None:
    """A note when an encoded text cannot be evidence for any class, else None.

    text: the decoded text. tokens: its token strings (with [CLS], [SEP]). labels: the model's labels.
    A model whose labels are whole numbers gets a note for a number it has no class for ("twelve", "42");
    any model gets one when most tokens are unknown to the encoder ([UNK]: 漢字, most emoji).
    """
    classes = sorted(int(label) for label in labels) if all(label.isascii() and label.isdigit() for label in labels) \
        else None
    if classes:
        beyond = [n for n in NUMBER.findall(text)
                  if (v := value(n)) is not None and not (v.is_integer() and int(v) in classes)]
        if beyond:
            known = f"{classes[0]}–{classes[-1]}" if classes == list(range(classes[0], classes[-1] + 1)) \
                else ", ".join(map(str, classes))
            named = ", ".join(f"“{n}”" for n in dict.fromkeys(beyond))
            return (f"The text names {named}, which is not one of this model's classes ({known}), so the text is "
                    "no evidence for any of them.")
    read = [t for t in tokens if t not in SPECIAL_TOKENS]
    if read and 2 * sum(t in UNKNOWN_TOKENS for t in read) >= len(read):
        return ("The text encoder could not read most of the text (characters it does not know), so the text is "
                "no evidence for any class.")
    return None
