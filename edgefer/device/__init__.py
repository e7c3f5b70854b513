"""Device side: face detection + int8 classification. Imports numpy, OpenCV, MediaPipe and a
TFLite interpreter only, never TensorFlow's training stack or edgefer.train."""
