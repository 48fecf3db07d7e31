"""The study's bidirectional LSTMs over a sequence's components; the only module importing Keras.

`SequenceBiLSTM` reads one or more components of a `SequenceDoc` (descriptions, dialogue,
character cues), each as a token stream: (one-hot or embedding) -> Bidirectional LSTM -> concat
[+ a small dense layer over the counts] [+ one over the sentiment block] -> dropout -> dense softmax (ratings) or sigmoid (tags).
The study's models are `component_bilstm(name)`; `combined_bilstm()` reads all three plus counts.

Tokens come from scikit-learn's CountVectorizer (top `vocab_size` tokens per component; Keras'
TextVectorization would need TensorFlow). A fitted model saves as `NAME.keras` beside
`NAME.vocab.json` (vocabularies, rating values, counts scaling, hyper-parameters): no pickle.

One-hot input times the LSTM's input kernel W (vocab x 4*units) is a row lookup into W, so an
Embedding of width >= 4*units feeding the LSTM spans the same functions; it is the default because
it measured faster on 2 CPU cores: per epoch ~16-20x at a full 5,000-token vocabulary, and
end to end on 60 sequences 6.9 s against 20.2 s even with the one-hot width cut to the fitted
vocabulary (bench/complexity_speed.py). `one_hot=True` is the faithful variant.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

if os.environ.get("KERAS_BACKEND") != "jax" and "keras" not in sys.modules:
    # Keras picks its backend on first import and only JAX is installed: the entry points (the CLI, the
    # app's server, the training worker: labeling.settings.process_defaults) set it before importing this.
    raise ImportError("models.complexity.nets needs Keras on JAX: set KERAS_BACKEND=jax before starting Python")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer  # noqa: E402

from models.complexity.data import (  # noqa: E402
    COMPONENTS, COUNT_KEYS, SequenceDoc, as_targets, count_matrix,
)
from models.complexity.sentiment import SENTIMENT_KEYS, sentiment_matrix  # noqa: E402
from store.types import ScriptlabelError  # noqa: E402

PAD, OOV, EMPTY = 0, 1, 2  # token ids below the vocabulary's; EMPTY marks a component with no text
_FIRST_ID = 3
TOKEN_PATTERN = r"(?u)\b\w[\w']*\b"
FORMAT_VERSION = 1
_LENGTH_BUCKET = 32
_PREDICT_BUCKET = 32
_cache_configured = False


class ModelFileError(ScriptlabelError, OSError):
    """A saved complexity model is missing a file or was written by something else."""


@keras.saving.register_keras_serializable(package="scriptlabel")
class OneHot(keras.layers.Layer):
    """Token ids -> one-hot rows (PAD -> all zeros, masked), the study's input encoding."""

    def __init__(self, depth: int, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth

    def call(self, ids):
        return keras.ops.one_hot(ids - 1, self.depth)  # id 0 (PAD) -> -1 -> a zero row

    def compute_mask(self, ids, mask=None):
        return keras.ops.not_equal(ids, PAD)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


def use_compilation_cache(path: str | Path | None = None) -> str | None:
    """Keep compiled XLA programs on disk so refits of one configuration skip compilation.

    Compiling a masked BiLSTM's training step takes ~5 s per shape on 2 CPU cores, longer than
    training it on 60 sequences. Called by fit/predict with no path: uses
    $SCRIPTLABEL_JAX_CACHE (set it to "off" to disable), else ~/.cache/scriptlabel/jax, unless
    JAX was already given a cache directory. Returns the directory in use.
    """
    global _cache_configured
    import jax

    current = jax.config.jax_compilation_cache_dir
    if path is None and (_cache_configured or current):
        return current
    _cache_configured = True
    if path is None:
        path = os.environ.get("SCRIPTLABEL_JAX_CACHE") or Path.home() / ".cache/scriptlabel/jax"
    if str(path).lower() in ("off", "0", "none", ""):
        return None
    Path(path).mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    return str(path)


def _tokenizer():
    return CountVectorizer(token_pattern=TOKEN_PATTERN, lowercase=True).build_analyzer()


def fit_vocabulary(texts: Sequence[str], size: int) -> list[str]:
    """The `size` most frequent tokens of `texts` (ties broken alphabetically), most frequent first."""
    vectorizer = CountVectorizer(token_pattern=TOKEN_PATTERN, lowercase=True, max_features=size)
    try:
        counts = vectorizer.fit_transform(texts)
    except ValueError:  # no token at all in any text
        return []
    totals = np.asarray(counts.sum(0)).ravel()
    names = vectorizer.get_feature_names_out()
    order = sorted(range(len(names)), key=lambda i: (-totals[i], names[i]))
    return [str(names[i]) for i in order]


def encode(texts: Sequence[str], vocabulary: Sequence[str], length: int) -> np.ndarray:
    """(n, length) int32 ids, first `length` tokens of each text, PAD after; EMPTY for no tokens."""
    index = {tok: i + _FIRST_ID for i, tok in enumerate(vocabulary)}
    analyze = _tokenizer()
    out = np.zeros((len(texts), length), dtype="int32")
    for row, text in enumerate(texts):
        ids = [index.get(tok, OOV) for tok in analyze(text)[:length]] or [EMPTY]
        out[row, : len(ids)] = ids
    return out


def _component_texts(docs: Sequence[SequenceDoc], component: str) -> list[str]:
    return ["\n".join(doc.component(component)) for doc in docs]


class SequenceBiLSTM(ClassifierMixin, BaseEstimator):
    """BiLSTM complexity (or tag) model over the given components of SequenceDocs.

    y is a 1-D array of ratings (softmax over the rating values present, `classes_`) or an
    (n, n_tags) 0/1 matrix (sigmoid per tag). `max_tokens` caps each component's tokens per
    sequence (the first ones are kept); shorter training data shrinks the padded length.
    """

    def __init__(self, components: tuple[str, ...] = ("descriptions",), use_counts: bool = False,
                 vocab_size: int = 5000, max_tokens: int = 200, units: int = 32,
                 dropout: float = 0.5, epochs: int = 30, batch_size: int = 16,
                 one_hot: bool = False, embedding_dim: int = 128, learning_rate: float = 3e-3,
                 class_weight: str | None = None, random_state: int = 0, verbose: int = 0,
                 use_sentiment: bool = False):
        self.components = components
        self.use_counts = use_counts
        self.use_sentiment = use_sentiment
        self.vocab_size = vocab_size
        self.max_tokens = max_tokens
        self.units = units
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.one_hot = one_hot
        self.embedding_dim = embedding_dim
        self.learning_rate = learning_rate
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    # -- fitting ------------------------------------------------------------------------------
    def fit(self, docs: Sequence[SequenceDoc], y) -> "SequenceBiLSTM":
        docs = list(docs)
        y, self.multilabel_ = as_targets(y)
        unknown = set(self.components) - set(COMPONENTS)
        if unknown or not self.components:
            raise ValueError(f"components must be some of {COMPONENTS}, got {self.components!r}")
        analyze = _tokenizer()
        self.vocabularies_, self.lengths_ = {}, {}
        for component in self.components:
            texts = _component_texts(docs, component)
            self.vocabularies_[component] = fit_vocabulary(texts, self.vocab_size)
            longest = max((len(analyze(t)) for t in texts), default=1)
            bucket = -(-longest // _LENGTH_BUCKET) * _LENGTH_BUCKET  # few distinct shapes
            self.lengths_[component] = int(max(1, min(self.max_tokens, bucket)))
        if self.use_counts:
            logs = np.log1p(count_matrix(docs))
            self.counts_mean_ = logs.mean(0)
            self.counts_scale_ = np.where(logs.std(0) > 0, logs.std(0), 1.0)
        if self.use_sentiment:
            block = sentiment_matrix(docs)
            self.sentiment_mean_ = block.mean(0)
            self.sentiment_scale_ = np.where(block.std(0) > 0, block.std(0), 1.0)
        weights = np.ones(len(docs), dtype="float32")
        if self.multilabel_:
            targets, n_out = y.astype("float32"), y.shape[1]
        else:
            self.classes_ = np.unique(y)
            targets, n_out = np.searchsorted(self.classes_, y), len(self.classes_)
            if self.class_weight == "balanced":
                counts = np.bincount(targets, minlength=n_out)
                weights = (len(targets) / (n_out * counts[targets])).astype("float32")
        use_compilation_cache()
        keras.utils.set_random_seed(self.random_state)
        self.model_ = self._build(n_out)
        x = self._inputs(docs)
        # Fill the last batch with zero-weight copies: one batch shape means one compilation.
        batch = max(1, min(self.batch_size, len(docs)))
        extra = (-len(docs)) % batch
        if extra:
            fill = np.arange(extra) % len(docs)
            x = {k: np.concatenate([v, v[fill]]) for k, v in x.items()}
            targets = np.concatenate([targets, targets[fill]])
            weights = np.concatenate([weights, np.zeros(extra, dtype="float32")])
        self.model_.fit(x, targets, sample_weight=weights, epochs=self.epochs, batch_size=batch,
                        shuffle=True, verbose=self.verbose)
        return self

    def _build(self, n_out: int) -> keras.Model:
        inputs, branches = [], []
        for component in self.components:
            ids = keras.Input(shape=(self.lengths_[component],), dtype="int32", name=component)
            if self.one_hot:
                # Columns of tokens outside the fitted vocabulary would always be 0: leave them out.
                depth = len(self.vocabularies_[component]) + _FIRST_ID - 1
                h = OneHot(depth, name=f"{component}_one_hot")(ids)
            else:
                # Sized by the hyper-parameter, not the fitted vocabulary, so every refit of one
                # configuration has the same shapes and reuses the compiled program from the cache.
                depth = self.vocab_size + _FIRST_ID - 1
                h = keras.layers.Embedding(depth + 1, self.embedding_dim, mask_zero=True,
                                           name=f"{component}_embedding")(ids)
            h = keras.layers.Bidirectional(keras.layers.LSTM(self.units),
                                           name=f"{component}_bilstm")(h)
            inputs.append(ids)
            branches.append(h)
        if self.use_counts:
            counts = keras.Input(shape=(len(COUNT_KEYS),), dtype="float32", name="counts")
            inputs.append(counts)
            branches.append(keras.layers.Dense(16, activation="relu", name="counts_dense")(counts))
        if self.use_sentiment:
            block = keras.Input(shape=(len(SENTIMENT_KEYS),), dtype="float32", name="sentiment")
            inputs.append(block)
            branches.append(keras.layers.Dense(16, activation="relu", name="sentiment_dense")(block))
        h = branches[0] if len(branches) == 1 else keras.layers.Concatenate()(branches)
        h = keras.layers.Dropout(self.dropout)(h)
        activation, loss = ("sigmoid", "binary_crossentropy") if self.multilabel_ else (
            "softmax", "sparse_categorical_crossentropy")
        out = keras.layers.Dense(n_out, activation=activation, name="output")(h)
        model = keras.Model(inputs, out)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss=loss)
        return model

    def _inputs(self, docs: Sequence[SequenceDoc]) -> dict[str, np.ndarray]:
        x = {c: encode(_component_texts(docs, c), self.vocabularies_[c], self.lengths_[c])
             for c in self.components}
        if self.use_counts:
            x["counts"] = ((np.log1p(count_matrix(docs)) - self.counts_mean_)
                           / self.counts_scale_).astype("float32")
        if self.use_sentiment:
            x["sentiment"] = ((sentiment_matrix(docs) - self.sentiment_mean_)
                              / self.sentiment_scale_).astype("float32")
        return x

    # -- predicting -----------------------------------------------------------------------------
    def predict_proba(self, docs: Sequence[SequenceDoc]) -> np.ndarray:
        docs = list(docs)
        if not docs:
            return np.zeros((0, self.model_.output_shape[-1]))
        use_compilation_cache()
        # One batch for the whole script, its size rounded up so that scripts share shapes.
        x = self._inputs(docs)
        size = -(-len(docs) // _PREDICT_BUCKET) * _PREDICT_BUCKET
        fill = np.zeros(size - len(docs), dtype=int)
        x = {k: np.concatenate([v, v[fill]]) for k, v in x.items()}
        proba = self.model_.predict(x, batch_size=size, verbose=0)[: len(docs)]
        return np.asarray(proba, dtype=float)

    def predict(self, docs: Sequence[SequenceDoc]) -> np.ndarray:
        proba = self.predict_proba(docs)
        if self.multilabel_:
            return (proba >= 0.5).astype(int)
        return self.classes_[proba.argmax(1)]

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write `path` (.keras) and its `.vocab.json` sidecar; each file appears only when whole."""
        path = _keras_path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "format": FORMAT_VERSION,
            "params": {k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in self.get_params().items()},
            "vocabularies": self.vocabularies_,
            "lengths": self.lengths_,
            "multilabel": bool(self.multilabel_),
            "classes": None if self.multilabel_ else [c.item() for c in self.classes_],
            "counts_mean": self.counts_mean_.tolist() if self.use_counts else None,
            "counts_scale": self.counts_scale_.tolist() if self.use_counts else None,
            "sentiment_mean": self.sentiment_mean_.tolist() if self.use_sentiment else None,
            "sentiment_scale": self.sentiment_scale_.tolist() if self.use_sentiment else None,
        }
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
            tmp_model = Path(tmp) / "model.keras"
            self.model_.save(tmp_model)
            tmp_vocab = Path(tmp) / "model.vocab.json"
            tmp_vocab.write_text(json.dumps(state), encoding="utf-8")
            os.replace(tmp_vocab, vocab_path(path))
            os.replace(tmp_model, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "SequenceBiLSTM":
        """A fitted model from `save`'s two files."""
        path = _keras_path(path)
        sidecar = vocab_path(path)
        for needed in (path, sidecar):
            if not needed.exists():
                raise ModelFileError(f"{needed}: missing; save the model again with SequenceBiLSTM.save")
        try:
            state = json.loads(sidecar.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{sidecar}: not a scriptlabel vocabulary file ({exc})") from exc
        if state.get("format") != FORMAT_VERSION:
            raise ModelFileError(f"{sidecar}: format {state.get('format')!r}, expected "
                                 f"{FORMAT_VERSION}; retrain the complexity model")
        params = dict(state["params"])
        params["components"] = tuple(params["components"])
        model = cls(**params)
        model.vocabularies_ = state["vocabularies"]
        model.lengths_ = {k: int(v) for k, v in state["lengths"].items()}
        model.multilabel_ = state["multilabel"]
        if not model.multilabel_:
            model.classes_ = np.asarray(state["classes"])
        if model.use_counts:
            model.counts_mean_ = np.asarray(state["counts_mean"])
            model.counts_scale_ = np.asarray(state["counts_scale"])
        if model.use_sentiment:  # files from before the block have no use_sentiment: False
            model.sentiment_mean_ = np.asarray(state["sentiment_mean"])
            model.sentiment_scale_ = np.asarray(state["sentiment_scale"])
        use_compilation_cache()
        model.model_ = keras.saving.load_model(path, compile=False)
        return model


def vocab_path(path: str | Path) -> Path:
    """The JSON sidecar of a `.keras` file: `m.keras` -> `m.vocab.json`."""
    path = _keras_path(path)
    return path.with_name(re.sub(r"\.keras$", "", path.name) + ".vocab.json")


def _keras_path(path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelFileError(f"{path}: a complexity model file must end in .keras")
    return path


def component_bilstm(component: str, **params) -> SequenceBiLSTM:
    """The study's model: one component's text -> BiLSTM -> softmax (or sigmoid for tags)."""
    if component not in COMPONENTS:
        raise ValueError(f"unknown component {component!r}: use one of {', '.join(COMPONENTS)}")
    return SequenceBiLSTM(components=(component,), **params)


def combined_bilstm(**params) -> SequenceBiLSTM:
    """All three components plus the counts in one network (`use_sentiment=True` adds the affect block)."""
    return SequenceBiLSTM(components=COMPONENTS, use_counts=True, **params)


def save_model(model: SequenceBiLSTM, path: str | Path) -> Path:
    return model.save(path)


def load_model(path: str | Path) -> SequenceBiLSTM:
    return SequenceBiLSTM.load(path)
