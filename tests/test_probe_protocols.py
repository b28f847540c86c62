"""Probe protocols (`config.probe.protocol`): clip_paper against a float64 scikit-learn sweep,
clip_benchmark against CLIP_benchmark's own training code, the vmapped grid against a loop."""

from __future__ import annotations

import numpy as np
import pytest

from configs import probe as probe_config
from jaxclip.config_args import ConfigError
from jaxclip.probes import protocols as P
from jaxclip.probes.split import train_val_split
from jaxclip.studies import probe as probe_study


def _problem(seed=0, n_classes=5, dim=32, n_train=400, n_test=2000):
    """Overlapping Gaussian clusters: accuracy well below 100 %."""
    r = np.random.default_rng(seed)
    mu = r.normal(size=(n_classes, dim)) * 0.35

    def draw(n):
        y = r.integers(0, n_classes, n)
        return (mu[y] + r.normal(size=(n, dim))).astype(np.float32), y

    return (*draw(n_train), *draw(n_test))


def test_config_protocol_validated():
    cfg = probe_config.get_config("smoke").probe
    assert cfg.protocol == "jaxclip"
    probe_study.check_config(cfg)
    cfg.protocol = "clip_paper"
    probe_study.check_config(cfg)
    cfg.protocol = "openai"
    with pytest.raises(ConfigError, match=r"protocol='openai'.*clip_benchmark"):
        probe_study.check_config(cfg)


def test_clip_paper_matches_sklearn_sweep():
    from sklearn.linear_model import LogisticRegression

    x, y, xt, yt = _problem(seed=1, n_train=300)
    grid = P.CLIP_PAPER_L2_GRID[::4]  # every second decade: 7 strengths (test time)
    probe = P.fit_clip_paper(x, y, seed=0, l2_grid=grid)
    ti, vi = train_val_split(x.shape[0], 0.2, 0)
    x64 = x.astype(np.float64)
    accs = []
    for l2 in grid:
        m = LogisticRegression(C=1.0 / l2, max_iter=1000, tol=1e-8).fit(x64[ti], y[ti])
        accs.append(m.score(x64[vi], y[vi]))
    accs = np.asarray(accs)
    # Ties: the strongest regularisation, as jaxclip's selection.
    best = np.flatnonzero(accs >= accs.max() - 1e-12)
    sk_l2 = grid[best[np.argmax(np.asarray(grid)[best])]]
    np.testing.assert_allclose(probe.val_accuracy, accs, atol=1.5 / len(vi))
    assert probe.l2 == pytest.approx(sk_l2)
    ref = LogisticRegression(C=1.0 / sk_l2, max_iter=1000, tol=1e-8).fit(x64, y)
    ours = float(np.mean(probe.predict(xt) == yt))
    assert abs(ours - ref.score(xt.astype(np.float64), yt)) <= 0.005
    assert 0.4 < ours < 0.95


def test_clip_benchmark_matches_its_code(monkeypatch):
    torch = pytest.importorskip("torch")
    from clip_benchmark.metrics import linear_probe as cb
    from torch.utils.data import DataLoader

    # Its training code calls .cuda(); on a CPU machine those are the identity.
    monkeypatch.setattr(torch.nn.Module, "cuda", lambda self, *a, **k: self)
    monkeypatch.setattr(torch.Tensor, "cuda", lambda self, *a, **k: self)
    # Its top-1 helper calls float() on a 1-element array, which numpy 2 rejects: same count.
    monkeypatch.setattr(
        cb, "accuracy", lambda out, tgt, topk=(1,): [float((out.argmax(1) == tgt).float().mean())]
    )
    epochs = P.CB_EPOCHS
    x, y, xt, yt = _problem(seed=2)
    ti, vi = train_val_split(x.shape[0], 0.2, 0)
    ours = P.fit_clip_benchmark(x[ti], y[ti], x[vi], y[vi], epochs=epochs, seed=0)

    def loader(feats, labels, shuffle=True):
        f = torch.nn.functional.normalize(torch.from_numpy(feats), dim=-1)
        ds = cb.FeatureDataset(f, torch.from_numpy(labels))
        return DataLoader(ds, batch_size=P.CB_BATCH_SIZE, shuffle=shuffle)

    tr, va = loader(x[ti], y[ti]), loader(x[vi], y[vi])
    wd_list = list(P.CB_WD_LIST)
    args = (tr, va, x.shape[1], int(y.max()) + 1, P.CB_LR, epochs, False, "cpu", False, 0)
    # CLIP_benchmark's coarse-to-fine search (metrics/linear_probe.py, evaluate()).
    peak = cb.find_peak(wd_list, [wd_list.index(v) for v in P.CB_WD_COARSE], *args)
    span = 8
    while span > 0:
        left, right = max(peak - span, 0), min(peak + span, len(wd_list) - 1)
        peak = cb.find_peak(wd_list, [left, peak, right], *args)
        span //= 2
    final = cb.train(loader(x, y), x.shape[1], int(y.max()) + 1, wd_list[peak], P.CB_LR,
                     epochs, False, "cpu", 0)  # fmt: skip
    logits, target = cb.infer(final, loader(xt, yt, shuffle=False), False, "cpu")
    theirs = float((logits.argmax(1) == target).float().mean())
    assert abs(ours.accuracy(xt, yt) - theirs) <= 0.005, (ours.weight_decay, wd_list[peak])
    assert 0.4 < theirs < 0.95


def test_vmapped_grid_equals_loop():
    x, y, _, _ = _problem(seed=3, n_train=200)
    xn = P.l2_normalize(x)
    wds = [1e-6, 1e-2, 1.0]
    kw = {"n_classes": 5, "epochs": 2, "seed": 0}
    w, b = P.train_adamw_grid(xn, y, wds, **kw)
    for i, wd in enumerate(wds):
        w1, b1 = P.train_adamw_grid(xn, y, [wd], **kw)
        np.testing.assert_allclose(w[i], w1[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(b[i], b1[0], rtol=1e-5, atol=1e-6)


def test_study_names_protocol_and_chosen_setting(tmp_path):
    from tests.test_study_probe import N_TEST, N_TRAIN, _cfg, _ctx, _run, _split

    cfg = _cfg()
    cfg.protocol = "clip_benchmark"
    cfg.mlp = False
    cfg.attributes = False
    cfg.sklearn_logistic = False
    cfg.linear_svc = False
    cfg.shots = (1,)
    cfg.l2_grid = (1.0,)
    train, test = _split(N_TRAIN, 1), _split(N_TEST, 2)
    out = _run(_ctx(train, test, tmp_path), cfg)
    assert out.results["protocol"] == "clip_benchmark"
    entry = out.results["methods"]["clip_benchmark"]
    assert entry["weight_decay"] in P.CB_WD_LIST
    md = out.report.markdown()
    assert "Probe protocol: `clip_benchmark`" in md
    assert "weight decay = " in md
