"""The per-split summary the log and the report page show."""

from __future__ import annotations

from albert_ner.data_summary import summarize_split
from albert_ner.sentences import Entity as E
from albert_ner.sentences import Sentence
from albert_ner.tokenization import CharTokenizer, Vocab


def test_counts_sentences_characters_entities_windows_and_unknown_characters() -> None:
    sentences = [Sentence(tuple("张伟在北京。"), (E(0, 2, "PER"), E(3, 5, "LOC"))),
                 Sentence(tuple("北京很大，上海也很大。王芳在上海。"),
                          (E(0, 2, "LOC"), E(5, 7, "LOC"), E(11, 13, "PER")))]
    tokenizer = CharTokenizer(Vocab.build([tuple("张伟在北京。很大，上海也")], min_count=1))
    summary = summarize_split("test", sentences, tokenizer, window_characters=10, repairs=2)
    assert (summary.sentences, summary.characters) == (2, 6 + 17)
    assert summary.entities == {"LOC": 3, "PER": 2}
    # The 17-character sentence is cut after "，" and after the first "。" into three windows.
    assert (summary.windows, summary.long_sentences, summary.window_characters) == (4, 1, 10)
    assert summary.unknown_most_common == "王芳" and summary.unknown_rate == 2 / 23
    assert summary.repairs == 2
