"""Text normalization for TTS: numbers, symbols and unspeakable text."""
import pytest

from voxanon.tts.text import normalize_text, spell_int, spell_ordinal, split_sentences


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (40, "forty"), (99, "ninety nine"), (100, "one hundred"),
    (101, "one hundred one"), (2000, "two thousand"), (1234567, "one million two hundred thirty four thousand "
                                                                  "five hundred sixty seven"),
    (-5, "minus five"), (10**15, "one zero zero zero zero zero zero zero zero zero zero zero zero zero zero zero"),
])
def test_spell_int(n, words):
    assert spell_int(n) == words


@pytest.mark.parametrize("n, words", [(1, "first"), (2, "second"), (3, "third"), (12, "twelfth"),
                                      (20, "twentieth"), (21, "twenty first"), (100, "one hundredth")])
def test_spell_ordinal(n, words):
    assert spell_ordinal(n) == words


@pytest.mark.parametrize("text, expected", [
    ("It's 10% off, $5 on the 2nd at 3:30.", "It's ten percent off, five dollars on the second at three thirty."),
    ("In 1986 we paid $1.50.", "In nineteen eighty six we paid one dollar fifty cents."),
    ("1,000 people & 3.14 pies", "one thousand people and three point one four pies"),
    ("Agent 007 at 9:05", "Agent zero zero seven at nine oh five"),
    ("Café naïve", "Cafe naive"),
    ("Tom + Jerry = 2", "Tom plus Jerry equals two"),
    ("the 1980s and the '90s", "the nineteen eighties and the nineties"),
    ("in the 1900s, 2000s and 60s", "in the nineteen hundreds, two thousands and sixties"),
    ("3D glasses on a 4x4", "three D glasses on a four by four"),
    ("1920 x 1080 MP3 at 10km", "nineteen twenty by one thousand eighty MP three at ten km"),
    ("the 2nd and 21st", "the second and twenty first"),
])
def test_numbers_and_symbols_become_words(text, expected):
    assert normalize_text(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "...", "日本語", "♪ ♫", "?!"])
def test_unspeakable_text_is_empty(text):
    assert normalize_text(text) == ""


def test_split_sentences():
    assert split_sentences("One. Two? Three! four; five") == ["One.", "Two?", "Three!", "four;", "five"]
    assert split_sentences("") == []


def test_no_sentence_split_after_titles_abbreviations_and_initials():
    text = normalize_text("Mr. Smith met Dr. Jones and Mrs. Brown at 3 p.m. today. J. R. R. Tolkien wrote it, "
                          "e.g. this one. Done!")
    assert split_sentences(text) == ["Mr. Smith met Dr. Jones and Mrs. Brown at three p.m. today.",
                                     "J. R. R. Tolkien wrote it, e.g. this one.", "Done!"]
