"""The frozen token manifold a graph language model is built on (see :mod:`.token_manifold`)."""

from semsim.manifold.token_manifold import ManifoldSpec, TokenManifold, build_manifold, manifold_for_corpus

__all__ = ["ManifoldSpec", "TokenManifold", "build_manifold", "manifold_for_corpus"]
