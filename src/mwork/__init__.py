"""mwork: reproducible PLND neuron detection and MWork experiments (Zhao et al., NeurIPS 2024)."""

__version__ = "0.1.0"
