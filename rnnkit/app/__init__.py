"""The command-line application: ``rnnkit`` and its commands, the experiment drivers (``bench
memory``, ``inspect gradients``, ``gradcheck``), and the text that shows what the library returns.

Nothing in the library imports this package; it formats and prints what the tasks return
(``rnnkit.tasks.results``) and reads argparse. ``rnnkit.app.cli.main`` is the entry point
(``rnnkit.cli.main`` and ``python -m rnnkit`` lead to it).
"""
