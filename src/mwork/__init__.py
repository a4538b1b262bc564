"""mwork: reproducible PLND neuron detection and MWork experiments (Zhao et al., NeurIPS 2024)."""

from mwork import leanimport as _leanimport

__version__ = "0.1.0"

_leanimport.install()  # before any mwork module imports transformers: no sklearn (leanimport)
