"""Pluggable TensorFlow/numpy models invoked by the engine through ``models.base`` protocols."""
