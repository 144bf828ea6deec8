"""mnist_linear: the linear softmax classifier on MNIST, as pure JAX functions.

Modules: data (IDX files), tfds_source, linear, models, metrics, train, tuning,
shifts, invariance, stats, tables, plots, results, experiment.
"""

__version__ = "0.1.0"
