"""Intel's Loihi 2 as a hardware profile: formats, the profile, a reference and a report.

- :mod:`~spatial_layers.hardware.loihi2.formats`: the chip's number formats and the
  fixed-point LIF that trains in them;
- :mod:`~spatial_layers.hardware.loihi2.profile`: the profile a network computes in
  (:data:`~spatial_layers.hardware.loihi2.profile.LOIHI2`);
- :mod:`~spatial_layers.hardware.loihi2.reference`: a numpy model of the chip's integer
  arithmetic that runs an exported program;
- :mod:`~spatial_layers.hardware.loihi2.report`: what a program uses of the chip.
"""
