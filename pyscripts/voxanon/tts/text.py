"""Text normalization for English TTS: spell out numbers and symbols, drop what no voice can say.

ASR output contains digits ("in 1986", "10%", "$5", "3:30", "2nd"), symbols and, for non-English
or noisy input, characters outside English. Piper's phonemizer and espeak-ng read digits in
their own ways (or not at all); spelling them here makes every voice say the same words.

    normalize_text("It's 10% off, $5 on the 2nd at 3:30.")
    -> "It's ten percent off, five dollars on the second at three thirty."
    normalize_text("the 1980s, the '90s, 3D, a 4x4")
    -> "the nineteen eighties, the nineties, three D, a four by four"
"""
from __future__ import annotations

import re
import unicodedata

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}
_SYMBOLS = {"%": " percent", "&": " and ", "@": " at ", "+": " plus ", "=": " equals ", "#": " number ",
            "°": " degrees", "€": " euros ", "£": " pounds ", "/": " slash ", "*": " ", "_": " ",
            "\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": ", ", "\u2014": ", "}
_KEEP = re.compile(r"[^A-Za-z' .,!?;:\-]")


def spell_int(n: int) -> str:
    """Cardinal words for an integer (``1234`` -> "one thousand two hundred thirty four");
    numbers of 10**15 and above are read digit by digit."""
    if n < 0:
        return "minus " + spell_int(-n)
    if n >= 10**15:
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return _ONES[n // 100] + " hundred" + ("" if rest == 0 else " " + spell_int(rest))
    for value, name in _SCALES:
        if n >= value:
            rest = n % value
            return spell_int(n // value) + " " + name + ("" if rest == 0 else " " + spell_int(rest))
    raise AssertionError("unreachable")


def spell_ordinal(n: int) -> str:
    words = spell_int(n).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def spell_year_like(n: int) -> str:
    """1100-1999 are read in pairs as English years and counts are ("nineteen eighty six",
    "fifteen hundred"); other numbers as cardinals."""
    if 1100 <= n <= 1999:
        high, low = divmod(n, 100)
        if low == 0:
            return spell_int(high) + " hundred"
        return spell_int(high) + (" oh " + _ONES[low] if low < 10 else " " + spell_int(low))
    return spell_int(n)


def _plural(words: str) -> str:
    """ "nineteen eighty" -> "nineteen eighties", "six" -> "sixes", "hundred" -> "hundreds"."""
    head, _, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + ("es" if last.endswith(("x", "s")) else "s")
    return f"{head} {last}".strip()


def _decade(match: re.Match) -> str:
    whole = match.group(1)
    return " " + _plural(spell_year_like(int(whole)) if len(whole) == 4 else spell_int(int(whole))) + " "


def _digits(s: str) -> str:
    return " ".join(_ONES[int(d)] for d in s)


def _number(match: re.Match) -> str:
    sign, whole, frac, ordinal = match.group("sign"), match.group("int"), match.group("frac"), match.group("ord")
    whole = whole.replace(",", "")
    n = int(whole)
    if ordinal:
        words = spell_ordinal(n)
    elif frac is not None:
        words = spell_int(n) + " point " + _digits(frac)
    elif len(whole) == 4 and not sign:
        words = spell_year_like(n)
    elif len(whole) > 1 and whole.startswith("0"):  # codes, "007"
        words = _digits(whole)
    else:
        words = spell_int(n)
    return (" minus " if sign else " ") + words + " "


_CURRENCY = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)")
_DECADE = re.compile(r"(?<![\w.])'?(\d+)'?s\b")  # 1980s, '90s, 1900s: plural numbers
_BY = re.compile(r"(?<=\d)\s?[x\u00d7]\s?(?=\d)")  # 4x4, 1920 x 1080
# 3D, MP3, 10km: the number apart from the letters (not ordinals: 2nd)
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[A-Za-z])(?!(?:st|nd|rd|th)\b)|(?<=[A-Za-z])(?=\d)")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_NUMBER = re.compile(r"(?P<sign>(?<![\w.])-)?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?P<ord>st|nd|rd|th)?\b")


def _time(match: re.Match) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes == 0:
        return f" {spell_int(hours)} o'clock "
    return f" {spell_int(hours)} " + ("oh " + _ONES[minutes] if minutes < 10 else spell_int(minutes)) + " "


def _currency(match: re.Match) -> str:
    amount = match.group(1).replace(",", "")
    dollars, _, cents = amount.partition(".")
    words = spell_int(int(dollars)) + (" dollar" if int(dollars) == 1 else " dollars")
    if cents and int(cents):
        words += " " + spell_int(int(cents[:2].ljust(2, "0"))) + " cents"
    return " " + words + " "


def normalize_text(text: str) -> str:
    """Text an English voice can read: numbers and symbols as words, accents stripped, anything
    else unspeakable dropped, whitespace collapsed. May return "" (nothing speakable)."""
    text = unicodedata.normalize("NFKC", text)
    text = _CURRENCY.sub(_currency, text)
    text = _TIME.sub(_time, text)
    text = _DECADE.sub(_decade, text)
    text = _BY.sub(" by ", text)
    for symbol, words in _SYMBOLS.items():
        text = text.replace(symbol, words)
    text = _DIGIT_LETTER.sub(" ", text)
    text = _NUMBER.sub(_number, text)
    # Latin letters with accents -> plain letters; other scripts are dropped below.
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = _KEEP.sub(" ", text)
    text = re.sub(r"\s+([.,!?;:])", r"\1", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if re.search(r"[A-Za-z]", text) else ""


# No sentence ends after a title or common abbreviation ("Mr. Smith") or an initial ("J. Smith").
_NO_END_AFTER = r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bJr\.)(?<!\bSr\.)" \
                r"(?<!\bProf\.)(?<!\bvs\.)(?<!\betc\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\b[A-Z]\.)(?<!\b[ap]\.m\.)"
_SENTENCE_END = re.compile(r"(?<=[.!?;])" + _NO_END_AFTER + r"\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences (split after . ! ? ;), so a long transcript is synthesized piece by piece."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]
