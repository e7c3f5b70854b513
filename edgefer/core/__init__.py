"""The shared core: taxonomy, model card and preprocessing, imported by every side.

Depends on numpy, OpenCV and Pillow only, never TensorFlow.
"""
