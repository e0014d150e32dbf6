//! Reading and writing `.npy` arrays (little-endian float32, C order).
