"""Count features over the sound of a message: its toneless pinyin syllables, and pairs of them.

Residents type pinyin when they cannot write a character ("re shui qi da bu zhao huo"), and
voice input writes homophones ("然气" for 燃气, "血呀" for 血压). Character features see
nothing in common between those and the words the training data spells right; their syllables
are the same. Chinese characters become syllables through pypinyin (its phrase table picks
the reading of 多音字); letters are cut into syllables ("louxia" → lou xia). config.yml names
this featurizer; docs/nlu.md says what it was measured to do.
"""

from __future__ import annotations

import re
from functools import lru_cache

from pypinyin import Style, lazy_pinyin
from pypinyin.pinyin_dict import pinyin_dict
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.rasa_counts import SentenceCountVectorsFeaturizer

_LETTERS = re.compile(r"([a-z]+)")
_HANZI = re.compile(r"([\u3400-\u9fff]+)")
_LONGEST_SYLLABLE = 6
_TONELESS = str.maketrans("āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüńňǹḿ", "aaaaeeeeiiiioooouuuuvvvvvnnnm")


@lru_cache(maxsize=1)
def syllables() -> frozenset[str]:
    """Every toneless syllable pypinyin knows for a character, spelt as it prints them (ü as
    v)."""
    toneless = (
        reading.translate(_TONELESS)
        for readings in pinyin_dict.values()
        for reading in readings.split(",")
    )
    return frozenset(s for s in toneless if _LETTERS.fullmatch(s))


def split_letters(word: str) -> list[str]:
    """Longest known syllable first, left to right; a stretch no syllable starts stays whole
    (English, an abbreviation)."""
    known = syllables()
    parts: list[str] = []
    start = 0
    while start < len(word):
        end = next(
            (
                end
                for end in range(min(len(word), start + _LONGEST_SYLLABLE), start, -1)
                if word[start:end] in known
            ),
            None,
        )
        if end is None:
            return parts + [word[start:]]
        parts.append(word[start:end])
        start = end
    return parts


def sounds(text: str) -> list[str]:
    """The syllables of a token's text: characters read by pypinyin, letters cut into
    syllables; anything else stays as it is (digits, emoji)."""
    out: list[str] = []
    for run in _HANZI.split(text.lower()):
        if _HANZI.fullmatch(run):
            out += lazy_pinyin(run, style=Style.NORMAL)
            continue
        for piece in _LETTERS.split(run):
            if _LETTERS.fullmatch(piece):
                out += split_letters(piece)
            elif piece.strip():
                out.append(piece.strip())
    return out


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class PinyinCountVectorsFeaturizer(SentenceCountVectorsFeaturizer):
    """Counts over each token's syllables instead of its characters, for the message as a
    whole (`bot.rasa_counts`); it featurizes a message's text only (labels keep their own
    featurizer)."""

    @staticmethod
    def _attributes_for(analyzer: str) -> list[str]:
        return [TEXT]

    def _get_message_tokens_by_attribute(self, message: Message, attribute: str) -> list[str]:
        return [" ".join(sounds(t.text)) for t in message.get(TOKENS_NAMES[attribute]) or []]
