import pytest

from apps.desk.similarity import tfidf_cosines


def test_the_same_words_score_highest_and_unrelated_ones_zero():
    scores = tfidf_cosines(
        "refund my double charge",
        ["refund for a double charge", "the app crashes on login", "refund policy"],
    )
    assert scores[0] > scores[2] > 0
    assert scores[1] == 0
    assert scores[0] <= 1 + 1e-9


@pytest.mark.parametrize("query", ["", "   ", "the and of", "1234 !!"])
def test_nothing_comparable_scores_zero_for_every_document(query):
    assert tfidf_cosines(query, ["the", "refund please"]) == [0.0, 0.0]


def test_no_documents_no_scores():
    assert tfidf_cosines("refund", []) == []
