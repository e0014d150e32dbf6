//! Feature front ends: audio samples -> frames of spectral features.
