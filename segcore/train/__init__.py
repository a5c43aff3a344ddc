"""The train stage: prepare, fit every k through the engine adapter, choose k, align ids, name."""
