"""How alike texts are, for the agent's context and suggested replies (apps/desk/assist.py).

scikit-learn is imported on the first call, not with the module: it takes about a second, and
every process of the desk (each uvicorn, Celery worker, management command) imports this app at
start, most of them never suggesting a thing.
"""


def tfidf_cosines(query: str, documents: list[str]) -> list[float]:
    """TF-IDF cosine of `query` with each document (0 for all when nothing is comparable)."""
    if not query.strip() or not documents:
        return [0.0] * len(documents)
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        strip_accents="unicode", sublinear_tf=True, ngram_range=(1, 2), stop_words="english"
    )
    try:
        matrix = vectorizer.fit_transform([query, *documents])
    except ValueError:  # an empty vocabulary: only stop words, digits or symbols
        return [0.0] * len(documents)
    cosines = matrix[1:] @ matrix[0].T  # rows are L2-normalised: the dot product is the cosine
    return [float(score) for score in cosines.toarray().ravel()]
