"""Evaluation on faces a model was not trained on (`checks`) and the calibration every bundled
model's card carries (`calibrate`, the `edgefer-calibrate` command). Reads the shared research
datasets; imports the device side to run models as the camera does, never the reverse."""
