"""Each cleaning rule on exact inputs: what it changes, and that layout and punctuation survive."""

import pytest

from genai_assets.cleaning.rules import (
    ascii_letter_ratio,
    clean_label,
    clean_text,
    contains_forbidden,
    contains_invisible,
    count_lines,
    count_words,
    dictionary_words,
    drop_letterless_lines,
    forbidden_characters,
    is_empty,
    is_too_long,
    is_too_short,
    looks_non_english,
    normalize_punctuation,
    remove_forbidden_characters,
    repair_unicode,
    repair_whitespace,
    stopword_ratio,
    strip_markup,
)

STANZAS = "Shall I compare thee to a summer's day?\nThou art more lovely—and more temperate:\n\nRough winds do shake; the darling buds of May!"


@pytest.mark.parametrize(
    "rule",
    [
        repair_unicode,
        normalize_punctuation,
        strip_markup,
        remove_forbidden_characters,
        drop_letterless_lines,
        repair_whitespace,
        clean_text,
    ],
)
def test_every_rule_keeps_clean_text_with_line_and_stanza_breaks_unchanged(rule):
    assert rule(STANZAS) == STANZAS
    assert rule(rule(STANZAS)) == STANZAS


def test_repair_unicode_fixes_mojibake_ligatures_width_and_line_endings():
    assert repair_unicode("donâ€™t stop\r\nthe ﬁre\rＡＢ") == "don\u2019t stop\nthe fire\nAB"
    assert repair_unicode("caf\u00e9\x92s line") == "caf\u00e9\u2019s line"  # cp1252 quote inside Unicode
    assert repair_unicode("plain ascii\r\n") == "plain ascii\n"


def test_normalize_punctuation_straightens_quotes_and_makes_em_dashes():
    text = "\u2018Go we,\u2019 sayde \u201cRobin\u201d `O swete' solus--After 1914\u20131918 \u2014 dash"
    assert (
        normalize_punctuation(text)
        == "'Go we,' sayde \"Robin\" 'O swete' solus\u2014After 1914-1918 \u2014 dash"
    )
    assert normalize_punctuation("a ---- rule") == "a ---- rule"  # long rules are not dashes


def test_strip_markup_turns_tags_into_breaks_and_decodes_entities():
    text = "First line<br>second <i>puja</i> line&nbsp;here &amp; there<p>new stanza"
    assert strip_markup(text) == "First line\nsecond puja line\u00a0here & there\n\nnew stanza"


def test_strip_markup_removes_editorial_notes_and_numeric_references_but_keeps_years():
    text = "Neat Terence,{8} witty[Footnote 3: see below] [Illustration]\nThere saw I<52> how (103) in (1839) *8* end<41.2>"
    assert strip_markup(text) == "Neat Terence, witty \nThere saw I how  in (1839)  end"
    assert strip_markup("[Pg 12]the rest") == "the rest"


def test_remove_forbidden_characters_deletes_debris_and_spaces_out_tabs():
    text = "_Justiti\u00e6 columna sis_, \u00fe{o}u ~x @home\ta|b =Holpen= \u200bzero\ufffd"
    assert remove_forbidden_characters(text) == "Justiti\u00e6 columna sis, \u00feou x home ab Holpen zero"
    assert not contains_forbidden(remove_forbidden_characters(text))


def test_forbidden_characters_spare_normal_punctuation_and_the_newline():
    normal = 'Hark! \'tis "so"; a—b, c-d: (e) & f? g... \u00e9\n'
    assert (
        forbidden_characters(normal) == []
        and forbidden_characters(normal.encode().decode("ascii", "ignore")) == []
    )
    assert forbidden_characters("a@b{c}\x00d\x7fe\u00adf") == ["@", "{", "}", "\x00", "\x7f", "\u00ad"]
    assert forbidden_characters("a@b{c}\x00d\x7fe\u00adf", printable_debris=False) == [
        "\x00",
        "\x7f",
        "\u00ad",
    ]


#: Invisible and reordering characters the issue names, by category: bidi embeddings, overrides
#: and isolates, LRM/RLM, the Arabic letter mark, zero-width joiners, word joiner, BOM (Cf); tag
#: characters (Cf, can spell hidden text); variation selectors (Mn); private use (Co); an
#: unassigned code point (Cn); a lone surrogate (Cs); C0/C1 controls (Cc).
INVISIBLE = (
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c\u200c\u200d\u2060\ufeff"
    "\U000e0001\U000e0041\U000e0042\U000e007f\ufe0f\ufe00\U000e0100\ue000\U000f0000\u0378\U0001fffe"
    "\ud800\x01\x1b\x85\x9f\u034f"
)


def test_every_invisible_and_reordering_character_is_removed_from_text_and_labels():
    text = "The Ty" + INVISIBLE + "ger\nburning bright \U0001f525"  # the emoji (So) is kept
    assert remove_forbidden_characters(text) == "The Ty ger\nburning bright \U0001f525"  # NEL -> space
    assert forbidden_characters(text) == [char for char in INVISIBLE]
    assert clean_label("William " + INVISIBLE + "Blake") == "William  Blake"
    assert clean_label("[Untitled] \u2067#3\u2069") == "[Untitled] #3"  # printable debris stays in titles
    assert clean_label(INVISIBLE) is None and clean_label(None) is None
    assert contains_invisible("a\u202eb") and not contains_invisible("[a] #b")


def test_drop_letterless_lines_removes_page_numbers_and_separators_not_stanza_breaks():
    assert drop_letterless_lines("line one\n123\n\n* * *\n. . .\nline two") == "line one\n\nline two"
    assert drop_letterless_lines("O!\n\nAh") == "O!\n\nAh"


def test_repair_whitespace_collapses_spaces_and_blank_lines():
    assert repair_whitespace("\n\n  a\t b  \n\n\n\n c \u00a0d \n\n") == "a b\n\nc d"
    assert repair_whitespace("a \n \nb") == "a\n\nb"  # a whitespace-only line is a stanza break


def test_clean_text_runs_all_rules_in_order():
    raw = "  _The_ Rose--red,\r\n  \u2019tis  fair [Pg 12]\n\n\n\n{3}\n  And `sweet'  <br/>indeed!  \n"
    assert clean_text(raw) == "The Rose\u2014red,\n'tis fair\n\nAnd 'sweet'\nindeed!"


def test_counts_and_words():
    assert count_lines(STANZAS) == 3
    assert count_words("a b\n\nc  d") == 4
    assert dictionary_words("'Tis the Rose's thorn \u2014 O!") == ["tis", "the", "rose's", "thorn", "o"]


def test_filters():
    assert is_empty(" \n\n ") and not is_empty("a")
    assert is_too_short(1, 10, min_lines=2, min_words=5)
    assert is_too_short(3, 4, min_lines=2, min_words=5)
    assert not is_too_short(2, 5, min_lines=2, min_words=5)
    assert is_too_long(11, 5, max_lines=10, max_words=100) and not is_too_long(10, 100, 10, 100)
    assert stopword_ratio("The rose and the thorn") == pytest.approx(3 / 5)
    assert ascii_letter_ratio("\u00feis is \u021de") == pytest.approx(5 / 7)
    assert ascii_letter_ratio("1 2 3") == 1.0
    assert looks_non_english("Monstrat Joannes Christum, haud res mira videtur", 0.95, 0.1)  # Latin
    assert looks_non_english(
        "\u0399\u03c3\u03bf\u03bd\u03bf\u03bc\u03bf\u03c5\u03c2 the and of", 0.95, 0.1
    )  # Greek
    assert not looks_non_english("And the night is dark and the sea is wide", 0.95, 0.1)
