"""edgefer: facial expression recognition from training to an int8 model on a Raspberry Pi.

Sides: `edgefer.data` (datasets), `edgefer.train` (fine-tuning, needs TensorFlow),
`edgefer.export` (int8 TFLite), `edgefer.device` (camera runtime, no TensorFlow), and the shared
core `edgefer.core` (taxonomy, model card, preprocessing).
"""
__version__ = "0.1.0"
