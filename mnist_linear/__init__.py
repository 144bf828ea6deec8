"""mnist_linear: the linear softmax classifier on MNIST, as pure JAX functions.

Modules (ARCHITECTURE.md says what each owns and which may import which): data,
tfds_source, linear, models, metrics, transforms, tasks, sharding, compiling, train,
evaluate, tuning, invariance, stats, tables, plots, results, config, experiment.
"""

__version__ = "0.1.0"
