"""How alike texts are, for the agent's context and suggested replies (apps/desk/assist.py).

scikit-learn is imported on the first call, not with the module: it takes about a second, and
every process of the desk (each uvicorn, Celery worker, management command) imports this app at
start, most of them never suggesting a thing. A server imports it before it accepts a
connection (`similarity_warm`, from supportdesk/asgi.py): there the first routed ticket's context
would otherwise import it while every socket of the process waits its turn.
"""


def similarity_warm() -> None:
    """Import what `tfidf_cosines` needs now (0.7 s on the 2-core machine)."""
    import sklearn.feature_extraction.text  # noqa: F401


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
