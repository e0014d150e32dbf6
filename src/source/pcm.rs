//! Raw PCM in messages (the server's WebSocket frames, the cluster's live
//! chunks): mono little-endian samples, checked before they reach a stage.

/// A raw sample format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcmFormat {
    /// 16-bit signed integers, scaled to [-1, 1).
    S16le,
    /// 32-bit IEEE floats, which must be finite.
    F32le,
}

impl PcmFormat {
    /// `s16le` or `f32le`.
    pub fn parse(s: &str) -> Option<PcmFormat> {
        match s {
            "s16le" => Some(PcmFormat::S16le),
            "f32le" => Some(PcmFormat::F32le),
            _ => None,
        }
    }

    /// The name [`PcmFormat::parse`] takes.
    pub fn name(self) -> &'static str {
        match self {
            PcmFormat::S16le => "s16le",
            PcmFormat::F32le => "f32le",
        }
    }
}

/// The samples of `b`, or why it is not whole, finite samples of `fmt`.
///
/// # Errors
/// A message naming the byte count or the first sample that is not finite.
pub fn decode(fmt: PcmFormat, b: &[u8]) -> Result<Vec<f32>, String> {
    match fmt {
        PcmFormat::S16le => {
            if !b.len().is_multiple_of(2) {
                return Err(format!("{} bytes is not whole 16-bit samples", b.len()));
            }
            Ok(b.chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
                .collect())
        }
        PcmFormat::F32le => {
            if !b.len().is_multiple_of(4) {
                return Err(format!(
                    "{} bytes is not whole 32-bit float samples",
                    b.len()
                ));
            }
            let v: Vec<f32> = b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                return Err(format!(
                    "sample {i} is not a finite number: is the format f32le?"
                ));
            }
            Ok(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_refuses() {
        assert_eq!(
            decode(PcmFormat::S16le, &[0, 0x40, 0, 0xc0]).unwrap(),
            vec![0.5, -0.5]
        );
        assert_eq!(
            decode(PcmFormat::F32le, &1.5f32.to_le_bytes()).unwrap(),
            vec![1.5]
        );
        assert!(
            decode(PcmFormat::S16le, &[1])
                .unwrap_err()
                .contains("1 bytes")
        );
        assert!(
            decode(PcmFormat::F32le, &[1, 2, 3])
                .unwrap_err()
                .contains("3 bytes")
        );
        let nan: Vec<u8> = [0.0f32, f32::NAN]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert!(
            decode(PcmFormat::F32le, &nan)
                .unwrap_err()
                .starts_with("sample 1 ")
        );
    }
}
