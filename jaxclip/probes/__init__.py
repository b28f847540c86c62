"""Probes on frozen embeddings: scikit-learn baselines, JAX logistic regression and MLPs.

Import the submodules you need (kept light: importing `jaxclip.probes` loads nothing heavy):

  from jaxclip.probes.linear import fit_logistic, logistic_path, solve_logistic_grid
  from jaxclip.probes.mlp import fit_mlp
  from jaxclip.probes.baselines import svc_linear, linear_svc, logistic_regression_clip
  from jaxclip.probes.io import save_probe, load_probe
"""

__all__ = ["baselines", "io", "linear", "mlp"]
