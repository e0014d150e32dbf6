//! Reading and writing `.npy` arrays.
//!
//! seqrec writes little-endian float32 in C order (what `np.load` expects by
//! default) and reads float32 or float64 (converted to f32), C order. The
//! reader checks the header against the file size before allocating, so a
//! lying header cannot make it allocate more than the file holds.

use std::io::{Read, Write};
use std::path::Path;

use crate::{Error, Result};

/// An n-dimensional float32 array in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Array {
    /// The dimensions.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

impl Array {
    /// Wraps `data` with `shape`.
    ///
    /// # Errors
    /// [`Error::Shape`] if the product of `shape` is not `data.len()`.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Shape(format!(
                "shape {shape:?} holds {n} values, got {}",
                data.len()
            )));
        }
        Ok(Array { shape, data })
    }
}

fn npy_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Npy {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Encodes the `.npy` v1.0 header for a float32 C-order array of `shape`.
fn header(shape: &[usize]) -> Vec<u8> {
    let dims = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {dims}, }}");
    // Magic (6) + version (2) + header length (2) + dict + padding + '\n', to a multiple of 64.
    let unpadded = 10 + dict.len() + 1;
    let total = unpadded.div_ceil(64) * 64;
    let mut h = Vec::with_capacity(total);
    h.extend_from_slice(b"\x93NUMPY\x01\x00");
    let hlen = (total - 10) as u16;
    h.extend_from_slice(&hlen.to_le_bytes());
    h.extend_from_slice(dict.as_bytes());
    h.resize(total - 1, b' ');
    h.push(b'\n');
    h
}

/// Writes `data` shaped `shape` as a float32 `.npy` file.
///
/// # Errors
/// [`Error::Shape`] if sizes disagree, [`Error::Io`] if the file cannot be written.
pub fn write_f32(path: impl AsRef<Path>, shape: &[usize], data: &[f32]) -> Result<()> {
    let path = path.as_ref();
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(Error::Shape(format!(
            "cannot write {}: shape {shape:?} holds {n} values, got {}",
            path.display(),
            data.len()
        )));
    }
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(&header(shape))
        .map_err(|e| Error::io(path, e))?;
    // Converted through a small buffer: no second copy of a large array.
    let mut buf = Vec::with_capacity(1 << 16);
    for block in data.chunks(1 << 14) {
        buf.clear();
        for v in block {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        f.write_all(&buf).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

/// Reads a float32 or float64 `.npy` file (C order, little-endian) as f32.
///
/// # Errors
/// [`Error::Io`] if unreadable, [`Error::Npy`] if the header is malformed, the
/// dtype is not `<f4`/`<f8`, the array is Fortran-ordered, or the data is
/// shorter or longer than the header says.
pub fn read_f32(path: impl AsRef<Path>) -> Result<Array> {
    let path = path.as_ref();
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut pre = [0u8; 10];
    f.read_exact(&mut pre)
        .map_err(|_| npy_err(path, "file too short for a .npy header"))?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(npy_err(
            path,
            "missing the \\x93NUMPY magic: not a .npy file",
        ));
    }
    let (hlen, pre_len) = match pre[6] {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as u64, 10u64),
        2 | 3 => {
            let mut more = [0u8; 2];
            f.read_exact(&mut more)
                .map_err(|_| npy_err(path, "truncated header"))?;
            (
                u32::from_le_bytes([pre[8], pre[9], more[0], more[1]]) as u64,
                12u64,
            )
        }
        v => return Err(npy_err(path, format!("unsupported .npy version {v}"))),
    };
    if pre_len + hlen > file_len || hlen > 1 << 20 {
        return Err(npy_err(path, "header length exceeds the file"));
    }
    let mut hbuf = vec![0u8; hlen as usize];
    f.read_exact(&mut hbuf)
        .map_err(|_| npy_err(path, "truncated header"))?;
    let h = String::from_utf8_lossy(&hbuf);
    let descr = dict_value(&h, "descr").ok_or_else(|| npy_err(path, "header has no 'descr'"))?;
    let width = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" => 4,
        "<f8" => 8,
        d => {
            return Err(npy_err(
                path,
                format!(
                    "dtype {d} is not supported; save float32 or float64 (e.g. x.astype(np.float32))"
                ),
            ));
        }
    };
    if dict_value(&h, "fortran_order").is_some_and(|v| v.trim() == "True") {
        return Err(npy_err(
            path,
            "Fortran-ordered arrays are not supported; save np.ascontiguousarray(x)",
        ));
    }
    let shape = parse_shape(&h).ok_or_else(|| npy_err(path, "header has no valid 'shape'"))?;
    let n = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| npy_err(path, "shape overflows"))?;
    let data_len = file_len - pre_len - hlen;
    let want = (n as u64).checked_mul(width as u64);
    if want != Some(data_len) {
        return Err(npy_err(
            path,
            format!(
                "shape {shape:?} needs {} bytes of data, the file has {data_len}",
                n as u128 * width as u128
            ),
        ));
    }
    let mut raw = vec![0u8; data_len as usize];
    f.read_exact(&mut raw).map_err(|e| Error::io(path, e))?;
    let data: Vec<f32> = if width == 4 {
        raw.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        raw.chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8-byte chunk")) as f32)
            .collect()
    };
    Ok(Array { shape, data })
}

/// The raw text of `key`'s value in a numpy header dict (up to the next `,` at depth 0).
fn dict_value<'a>(h: &'a str, key: &str) -> Option<&'a str> {
    let pat_a = format!("'{key}'");
    let pos = h.find(&pat_a)? + pat_a.len();
    let rest = h[pos..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

fn parse_shape(h: &str) -> Option<Vec<usize>> {
    let v = dict_value(h, "shape")?.trim();
    let inner = v.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        for shape in [vec![3usize], vec![2, 3], vec![4, 1, 2], vec![0, 5]] {
            let n: usize = shape.iter().product();
            let data: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 1.0).collect();
            let p = dir.path().join("a.npy");
            write_f32(&p, &shape, &data).unwrap();
            let a = read_f32(&p).unwrap();
            assert_eq!(a.shape, shape);
            assert_eq!(a.data, data);
            assert_eq!(
                std::fs::metadata(&p).unwrap().len() as usize % 64,
                (4 * n) % 64
            );
        }
    }

    #[test]
    fn lying_header_is_refused_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.npy");
        let mut bytes = header(&[1 << 40, 1 << 20]);
        bytes.extend_from_slice(&[0; 16]);
        std::fs::write(&p, bytes).unwrap();
        let e = read_f32(&p).unwrap_err().to_string();
        assert!(e.contains("big.npy") && e.contains("bytes of data"), "{e}");
    }

    #[test]
    fn garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        std::fs::write(&p, b"hello world, not numpy").unwrap();
        assert!(matches!(read_f32(&p), Err(Error::Npy { .. })));
        std::fs::write(&p, b"").unwrap();
        assert!(matches!(read_f32(&p), Err(Error::Npy { .. })));
    }
}
