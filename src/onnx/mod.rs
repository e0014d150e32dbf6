//! Minimal, dependency-free reading of ONNX model files.
