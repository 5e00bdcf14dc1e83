"""xling's fairseq plugin: multilingual MLM + TLM pretraining (task, criterion, model).

Use it either way:

* programmatically: ``import xling.xlmplug`` registers the components with fairseq;
* from the command line: ``fairseq-train --user-dir /path/to/xling/xlmplug --task xling_xlm ...``.

fairseq's ``--user-dir`` imports this directory as a top-level module named ``xlmplug``. Registering
the same components twice (once as ``xlmplug``, once as ``xling.xlmplug``) would make fairseq raise
"Cannot register duplicate ...", so a top-level import simply aliases the canonical package.

Registered names: optimizer ``xling_adamw``, task ``xling_xlm``, criterion ``xling_mlm_tlm``, model ``xling_xlm`` with
architectures ``xling_xlm_tiny``, ``xling_xlm_base``, ``xling_xlm_large``; Unicoder objectives: task
``xling_unicoder`` and criterion ``xling_unicoder`` (weighted sum), over the objective registry
:mod:`xling.xlmplug.objectives` and the heads of :mod:`xling.xlmplug.heads` (plain modules, not criteria).
"""
import importlib
import sys

if __name__ != "xling.xlmplug":  # imported through fairseq's --user-dir
    from pathlib import Path as _Path

    try:
        importlib.import_module("xling")
    except ImportError:  # not installed: the repository root is two levels up
        sys.path.insert(0, str(_Path(__file__).resolve().parents[2]))
    sys.modules[__name__] = importlib.import_module("xling.xlmplug")
    # fairseq then imports ``xlmplug.tasks.*`` and ``xlmplug.models.*`` by name: alias those too
    for _key in [k for k in sys.modules if k.startswith("xling.xlmplug.")]:
        sys.modules[__name__ + _key[len("xling.xlmplug"):]] = sys.modules[_key]
else:
    from xling.fairseq_compat import ensure_fairseq as _ensure
    from xling.xlmplug.wandb_import import unless_asked as _unless_wandb_asked

    with _unless_wandb_asked():  # fairseq imports wandb (~0.4 s) for its --wandb-project only
        _ensure()
    from xling.xlmplug import criterions, models, optim, tasks  # noqa: F401,E402  (registration)
