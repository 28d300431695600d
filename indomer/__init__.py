"""indomer: build, split, score and publish the IndoMER multimodal emotion dataset."""

__version__ = "0.1.0"
