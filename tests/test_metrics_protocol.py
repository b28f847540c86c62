"""`metrics_protocol="clip_benchmark"` against CLIP_benchmark 1.6.2's own `evaluate` functions.

CLIP_benchmark's evaluators take a model and a DataLoader; a stub torch module returns stored
embeddings for image indices and token ids, so both sides see the same embeddings. Its
`accuracy` calls `float()` on a 1-element array, which NumPy 2 rejects; the test wraps it.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
zsc = pytest.importorskip("clip_benchmark.metrics.zeroshot_classification")
zsr = pytest.importorskip("clip_benchmark.metrics.zeroshot_retrieval")

from jaxclip.analysis import clip_benchmark as cb  # noqa: E402
from jaxclip.analysis import torch_topk  # noqa: E402


class _Stub(torch.nn.Module):
    """encode_image(index batch) / encode_text(token batch) -> stored embeddings."""

    def __init__(self, images: np.ndarray, texts: np.ndarray):
        super().__init__()
        self.images = torch.from_numpy(np.asarray(images, np.float32))
        self.texts = torch.from_numpy(np.asarray(texts, np.float32))

    def encode_image(self, idx):
        return self.images[idx]

    def encode_text(self, tok):
        return self.texts[tok]


def _tokenizer(texts):
    return torch.tensor([int(t) for t in texts], dtype=torch.long)


def _accuracy(output, target, topk=(1,)):
    """CLIP_benchmark's `accuracy` with `.item()` in place of float(ndarray) (NumPy 2)."""
    pred = output.topk(max(topk), 1, True, True)[1].t()
    correct = pred.eq(target.view(1, -1).expand_as(pred))
    n = len(target)
    return [float(correct[:k].reshape(-1).float().sum(0).item()) / n for k in topk]


class _ClsData(torch.utils.data.Dataset):
    def __init__(self, labels, classes):
        self.labels, self.classes = list(labels), list(classes)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return i, int(self.labels[i])


def reference_zero_shot(images, texts, labels, monkeypatch, batch_size=7):
    """CLIP_benchmark's zero-shot metrics; texts (C, T, D), prompt (c, t) is token c*T+t."""
    c, t, d = texts.shape
    model = _Stub(images, texts.reshape(c * t, d))
    templates = [f"{{c}}{j}" for j in range(t)]  # "c*T + j" after format: see tokenizer
    classnames = [str(i) for i in range(c)]

    def tok(strings):  # "<class><template j>" -> c*T + j
        return torch.tensor([int(s[:-1]) * t + int(s[-1]) for s in strings])

    assert t <= 10
    loader = torch.utils.data.DataLoader(_ClsData(labels, classnames), batch_size=batch_size)
    monkeypatch.setattr(zsc, "accuracy", _accuracy)
    return zsc.evaluate(model, loader, tok, classnames, templates, "cpu", amp=False)


class _RetData(torch.utils.data.Dataset):
    def __init__(self, captions):
        self.captions = captions  # per image: list of text ids (as strings)

    def __len__(self):
        return len(self.captions)

    def __getitem__(self, i):
        return i, self.captions[i]


def _collate(batch):
    return torch.tensor([b[0] for b in batch]), [b[1] for b in batch]


def reference_retrieval(images, texts, t2i, ks, batch_size=4):
    captions = [[str(j) for j in np.flatnonzero(t2i == i)] for i in range(len(images))]
    loader = torch.utils.data.DataLoader(
        _RetData(captions), batch_size=batch_size, collate_fn=_collate
    )
    model = _Stub(images, texts)
    return zsr.evaluate(model, loader, _tokenizer, "cpu", amp=False, recall_k_list=list(ks))


def _nan_to_none(d):
    return {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in d.items()}


# ---------------------------------------------------------------- torch.topk's tie order


@pytest.mark.parametrize("n", [1, 2, 4, 5, 9, 16, 17, 33, 64, 65, 320, 321, 1000])
def test_topk_indices_match_torch_on_ties(n):
    rng = np.random.default_rng(n)
    for levels in (1, 2, 3, 40):
        for _ in range(3):
            x = rng.integers(0, levels, size=n).astype(np.float32)
            for k in sorted({1, 2, 5, 10} & set(range(1, n + 1))):
                ref = torch.topk(torch.from_numpy(x), k, 0, True, True)[1].tolist()
                assert torch_topk.topk_indices(x, k) == ref, (n, k, levels)


def test_topk_contains_matches_torch():
    rng = np.random.default_rng(1)
    for n in (3, 8, 70, 400):
        s = rng.integers(0, 3, size=(60, n)).astype(np.float32)
        p = rng.random((60, n)) < 0.1
        k = min(5, n)
        top = torch.topk(torch.from_numpy(s), k, 1)[1].numpy()
        for within in (1, k):
            ref = np.take_along_axis(p, top[:, :within], 1).any(1)
            np.testing.assert_array_equal(torch_topk.topk_contains(s, p, k, within), ref)


def test_topk_rejects_bad_k():
    with pytest.raises(ValueError, match="k must lie in"):
        torch_topk.topk_indices(np.zeros(3), 4)


# ---------------------------------------------------------------- zero-shot


def _zs_case(rng, n, c, t, d, dup=()):
    texts = rng.normal(size=(c, t, d)).astype(np.float32)
    for a, b in dup:  # identical prompts -> identical class rows -> tied logits
        texts[b] = texts[a]
    images = rng.normal(size=(n, d)).astype(np.float32)
    labels = rng.integers(0, c, size=n)
    return images, texts, labels


@pytest.mark.parametrize(
    "n,c,t,dup",
    [
        (40, 12, 3, ()),  # ordinary random data
        (60, 8, 2, ((0, 1), (2, 3), (2, 4), (5, 6))),  # duplicate class embeddings: ties
        (30, 3, 2, ()),  # fewer than 5 classes: top-5 NaN
        (30, 4, 1, ((0, 1), (0, 2))),  # < 5 classes with ties
        (50, 70, 1, tuple((0, j) for j in range(1, 30))),  # partial_sort path (k * 64 <= C)
    ],
)
@pytest.mark.filterwarnings("ignore:y_pred contains classes")
def test_zero_shot_equals_clip_benchmark(n, c, t, dup, monkeypatch):
    rng = np.random.default_rng(n + c)
    images, texts, labels = _zs_case(rng, n, c, t, 16, dup)
    if dup:  # put images on the tied class directions so ties decide top-1 / top-5
        w = cb.classifier(texts)
        images[: n // 2] = w[labels[: n // 2]] * rng.uniform(0.5, 2.0, size=(n // 2, 1))
    ref = _nan_to_none(reference_zero_shot(images, texts, labels, monkeypatch))
    ours = cb.zero_shot(images, texts, labels)
    assert ours == ref
    if c < 5:
        assert ours["acc5"] is None


def test_zero_shot_ties_differ_from_jaxclip_rule(monkeypatch):
    """All images on class 0's direction, class 0..C-1 identical: CLIP_benchmark's top-1 follows
    torch.topk's order, jaxclip's "first" rule gives every tie to the lowest index."""
    rng = np.random.default_rng(0)
    c, n = 6, 12
    texts = np.repeat(rng.normal(size=(1, 1, 8)).astype(np.float32), c, axis=0)
    images = np.repeat(cb.classifier(texts)[:1], n, axis=0)
    labels = np.arange(n) % c
    ref = _nan_to_none(reference_zero_shot(images, texts, labels, monkeypatch))
    ours = cb.zero_shot(images, texts, labels)
    assert ours == ref
    first = torch_topk.topk_indices(np.zeros(c, np.float32), 5)[0]
    assert ours["acc1"] == np.mean(labels == first)  # by hand: the class torch puts first
    assert ours["acc5"] == np.mean(np.isin(labels, torch_topk.topk_indices(np.zeros(c), 5)))


# ---------------------------------------------------------------- retrieval


@pytest.mark.parametrize(
    "ni,per_image,dup_captions,captionless,ks",
    [
        (9, 2, False, 0, (1, 5)),  # ordinary random data
        (10, 3, True, 0, (1, 2, 5)),  # duplicate captions: tied text scores
        (8, 2, False, 3, (1, 5, 10)),  # images without captions; k above #images
        (12, 1, True, 4, (1, 3)),  # both
    ],
)
def test_retrieval_equals_clip_benchmark(ni, per_image, dup_captions, captionless, ks):
    rng = np.random.default_rng(ni * 10 + per_image)
    d = 8
    images = rng.normal(size=(ni, d)).astype(np.float32)
    if dup_captions:
        images[1] = images[0]  # duplicate images too: tied image scores
    captioned = np.arange(ni - captionless)
    t2i = np.repeat(captioned, per_image)
    texts = rng.normal(size=(len(t2i), d)).astype(np.float32)
    if dup_captions:
        texts[1::2] = texts[0::2][: len(texts[1::2])]  # every second caption repeats the one before
        texts[-3:] = texts[0]
    texts += 0.3 * images[t2i]
    ks_ok = tuple(k for k in ks if k <= min(ni, len(t2i)))
    ref = reference_retrieval(images, texts, t2i, ks_ok)
    ours = cb.retrieval(images, texts, t2i, ks)
    assert {k: ours[k] for k in ref} == ref
    assert list(ours)[:2] == list(ref)[:2]
    for k in set(ks) - set(ks_ok):  # torch.topk fails there; we write null
        assert ours[f"image_retrieval_recall@{k}"] is None or k <= ni
    if captionless:  # the image -> text recall counts the captionless images as misses
        assert ours["text_retrieval_recall@1"] <= (ni - captionless) / ni + 1e-6


# ---------------------------------------------------------------- studies, config, run file


def _word_embed(d: int = 12):
    """A planted text encoder: the sum of a fixed random vector per word (same text, same row)."""
    table: dict[str, np.ndarray] = {}

    def embed(text: str) -> np.ndarray:
        v = np.zeros(d, np.float32)
        for w in text.lower().replace(".", " ").split():
            if w not in table:
                table[w] = np.random.default_rng(len(table) + 7).normal(size=d).astype(np.float32)
            v += table[w]
        return v

    return embed


def _features(x, labels, classnames, captions=None):
    from jaxclip.features.extract import ImageFeatures

    return ImageFeatures(
        embeds=np.asarray(x, np.float32),
        labels=np.asarray(labels),
        indices=np.arange(len(x)),
        attributes=None,
        captions=captions,
        classnames=tuple(classnames),
        meta={"dataset": "planted"},
    )


@pytest.mark.parametrize("protocol", ["jaxclip", "clip_benchmark"])
@pytest.mark.filterwarnings("ignore:y_pred contains classes")
def test_zero_shot_study_follows_the_protocol(protocol, tmp_path, monkeypatch):
    """Duplicate class names (as ImageNet's two "crane"s) give tied class rows."""
    from configs.zero_shot import study_config
    from jaxclip.analysis import metrics
    from jaxclip.studies import zero_shot as study
    from tests.study_fakes import FakeContext

    names = ("crane", "crane", "dog", "cat", "maillot", "maillot", "fox")
    embed = _word_embed()
    rng = np.random.default_rng(3)
    labels = rng.integers(0, len(names), size=28)
    x = np.stack([embed(f"a photo of a {names[c]}.") for c in labels])
    x = x + 0.05 * rng.normal(size=x.shape).astype(np.float32)
    cfg = study_config()
    cfg.attributes = False
    cfg.templates = "a photo of a {}."
    ctx = FakeContext(
        _features(x, labels, names), tmp_path, embed=embed, config={"metrics_protocol": protocol}
    )
    results = study.analyse(ctx, cfg).to_json()  # the report: the test below
    text = np.stack([embed(f"a photo of a {n}.") for n in names])[:, None, :]
    ref = _nan_to_none(reference_zero_shot(x, text, labels, monkeypatch))
    assert results["metrics_protocol"] == protocol
    assert results["clip_benchmark"] == ref
    if protocol == "clip_benchmark":
        got = [results[k] for k in ("top1", "top5", "mean_per_class_recall")]
        assert got == [ref["acc1"], ref["acc5"], ref["mean_per_class_recall"]]
    else:  # jaxclip: ties to the lower class index
        logits = np.asarray(x / np.linalg.norm(x, axis=1, keepdims=True)) @ np.asarray(
            cb.classifier(text)
        ).T.astype(np.float64)
        assert results["top1"] == metrics.topk_accuracy(logits, labels, (1,))["top1"]


def test_zero_shot_study_top5_is_null_below_six_classes(tmp_path):
    from configs.zero_shot import study_config
    from jaxclip.studies import zero_shot as study
    from tests.study_fakes import FakeContext, run_study

    names = ("red", "green", "blue")
    embed = _word_embed()
    labels = np.arange(9) % 3
    x = np.stack([embed(f"a photo of a {names[c]}.") for c in labels])
    cfg = study_config()
    cfg.attributes = False
    cfg.templates = "a photo of a {}."
    for protocol in ("jaxclip", "clip_benchmark"):
        ctx = FakeContext(
            _features(x, labels, names), tmp_path / protocol, embed=embed,
            config={"metrics_protocol": protocol},
        )  # fmt: skip
        results, section = run_study(study.STUDY, ctx, cfg, study.NAME)
        assert results["top1"] == 1.0 and results["top5"] is None
        assert results["headline"]["top5"] is None
        assert results["clip_benchmark"]["acc5"] is None
        md = section.report.markdown()
        assert "| top-5 accuracy" not in md and "top-1 accuracy" in md
        assert ("CLIP_benchmark" in md) == (protocol == "clip_benchmark")


def test_retrieval_study_follows_the_protocol(tmp_path):
    """Duplicate captions and captionless images: CLIP_benchmark's recalls, from its evaluate."""
    from configs.retrieval import study_config
    from jaxclip.studies import retrieval as study
    from tests.study_fakes import FakeContext

    embed = _word_embed()
    words = ["red circle", "red circle", "blue star", "green square", "blue star", "pink heart"]
    captions = [[w] for w in words] + [[], []] + [["red circle", "small red circle"]]
    x = np.stack([embed(c[0]) if c else embed("grey") for c in captions])
    x = x + 0.3 * np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
    labels = np.zeros(len(x), np.int64)
    feats = _features(x, labels, ("thing", "other"), captions)
    texts, t2i = feats.caption_arrays()
    cfg = study_config()
    cfg.ks = (1, 2, 20)
    cfg.queries, cfg.chains, cfg.examples, cfg.score_queries = ("a red circle",), (), 0, False
    ref = reference_retrieval(x, np.stack([embed(t) for t in texts]), t2i, (1, 2))
    for protocol in ("jaxclip", "clip_benchmark"):
        ctx = FakeContext(feats, tmp_path / protocol, embed=embed,
                          config={"metrics_protocol": protocol})  # fmt: skip
        results = study.analyse(ctx, cfg).to_json()
        caps = results["captions"]
        assert caps["metrics_protocol"] == protocol
        assert {k: caps["clip_benchmark"][k] for k in ref} == ref
        assert caps["clip_benchmark"]["image_retrieval_recall@20"] is None  # 20 > 9 images
        if protocol == "clip_benchmark":
            assert caps["text_to_image"]["R@1"] == ref["image_retrieval_recall@1"]
            assert caps["image_to_text"]["R@2"] == ref["text_retrieval_recall@2"]
            # intervals on CLIP_benchmark's own hits: image -> text over all 9 images (the two
            # captionless ones as misses), text -> image over the 7 captioned images' captions
            from jaxclip.analysis import bootstrap

            ci = caps["image_to_text"]["R@2_ci"]
            n, k = 9, round(ref["text_retrieval_recall@2"] * 9)
            rng = np.random.default_rng(ctx.config.seed)
            lo, hi = bootstrap.percentile_interval(rng.binomial(n, k / n, 10_000) / n)
            assert ci == {"value": k / n, "ci_low": lo, "ci_high": hi, "n": n}
            ci = caps["text_to_image"]["R@1_ci"]
            assert ci["value"] == pytest.approx(ref["image_retrieval_recall@1"]) and ci["n"] == 7
            assert ci["ci_low"] <= ci["value"] <= ci["ci_high"]
        else:  # exact ranks over captioned images; K >= gallery: null
            assert caps["image_to_text"]["R@1"] != ref["text_retrieval_recall@1"]
            assert caps["text_to_image"]["R@20"] is None


def test_bad_protocol_is_one_line_config_error():
    from configs.common import base_config
    from jaxclip.config_args import ConfigError
    from jaxclip.studies.common import check_common

    c = base_config("smoke")
    assert c.metrics_protocol == "jaxclip"
    c.metrics_protocol = "torchmetrics"
    with pytest.raises(ConfigError, match=r"^config.metrics_protocol='torchmetrics' is not valid;"
                       r" choose one of: jaxclip, clip_benchmark$"):  # fmt: skip
        check_common(c)


def test_clip_benchmark_records_have_the_cli_keys():
    from jaxclip.studies.runner import clip_benchmark_records

    results = {
        "config": {"dataset": "shapes/tiny", "model": "tiny_random"},
        "model": {"name": "tiny"},
        "zero_shot": {"clip_benchmark": {"acc1": 0.5, "acc5": None, "mean_per_class_recall": 0.4}},
        "retrieval": {"captions": {"clip_benchmark": {"image_retrieval_recall@1": 0.25}}},
    }
    recs = clip_benchmark_records(results)
    # clip_benchmark/cli.py: dump = {dataset, model, pretrained, task, metrics, language}
    assert [list(r) for r in recs] == [
        ["dataset", "model", "pretrained", "task", "metrics", "language"]
    ] * 2
    assert [r["task"] for r in recs] == ["zeroshot_classification", "zeroshot_retrieval"]
    assert recs[0]["metrics"] == results["zero_shot"]["clip_benchmark"]
    assert clip_benchmark_records({**results, "zero_shot": {}, "retrieval": {}}) == []
