"""``python -m xling.xlmplug.train ARGS``: fairseq-train with the plugin registered.

Identical to ``fairseq-train`` (same arguments) except that torch's safe globals are set up for
fairseq checkpoints (:func:`xling.fairseq_compat.ensure_fairseq`) and ``xling.xlmplug`` is imported,
so no ``--user-dir`` is needed and checkpoints do not record a filesystem path.
"""


def main():
    import xling.xlmplug  # noqa: F401  (registers task, criterion, model)
    from fairseq_cli.train import cli_main

    cli_main()


if __name__ == "__main__":
    main()
