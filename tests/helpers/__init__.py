"""Helpers that the tests import (fixtures stay in the ``conftest.py`` files).

- :mod:`tests.helpers.training`: tiny configs, quiet trainers and run folders of the
  training-stack tests;
- :mod:`tests.helpers.probes`: callbacks the tests add by class path (also in DDP
  subprocesses), state-dict comparison, the check of a refused command;
- :mod:`tests.helpers.callbacks`: random spike loaders and the trainer of the callback tests;
- :mod:`tests.helpers.rewiring`: a tiny classifier, its data and trainer, and the probe of
  the rewiring-callback tests; :mod:`tests.helpers.ddp_rewiring_worker`: their DDP run
  (``python -m tests.helpers.ddp_rewiring_worker``);
- :mod:`tests.helpers.recipes`: the recipes' ``--config`` chains and merged configs;
- :mod:`tests.helpers.checkpoints`: bad checkpoint files;
- :mod:`tests.helpers.export`: small networks and inputs of the export tests, a naive NIR
  simulator and the comparison with the Loihi 2 reference;
- :mod:`tests.helpers.hardware`: networks in the Loihi 2 profile and their inputs;
- :mod:`tests.helpers.delay`: kernels, delay modes and layer twins of the SpatialDelay tests;
- :mod:`tests.helpers.recurrent_reference`: the recurrent LIF by its definition.
"""
