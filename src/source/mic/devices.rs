//! Device discovery and the choice of a device configuration (rate, channels, sample format).

use super::*;

/// Native rates tried, in order, when the device cannot deliver the target rate itself.
pub(super) const PREFERRED_RATES: [u32; 2] = [48_000, 44_100];

/// An audio input device, as listed by [`list_input_devices`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Position in the list; `--device INDEX` (or [`MicOptions::device`]) selects it.
    pub index: usize,
    /// The device's name as the audio system knows it (for ALSA, the PCM name: `default`,
    /// `pulse`, `hw:CARD=0,DEV=0`, …). Stable across runs; `--device NAME` selects it.
    pub name: String,
    /// A human description (e.g. "PulseAudio Sound Server"), or the name again when there is none.
    pub description: String,
    /// Whether this is the system's default input device (used when no device is given).
    pub is_default: bool,
    /// The configuration the device proposes by default, e.g. `2 ch, 44100 Hz, f32`; `None` when
    /// it cannot be queried.
    pub default_config: Option<String>,
    /// Supported input configurations, human-readable: channel counts, rate range, sample format,
    /// buffer size range, e.g. `1-32 ch, 1-384000 Hz, i16, buffer 1-1048576 frames`. When the
    /// device cannot be opened to query them, one entry `unavailable: REASON`.
    pub configs: Vec<String>,
}

/// Lists the audio input devices of the default host, in the order [`MicOptions::device`]
/// indexes them.
///
/// Querying a device's configurations opens it briefly; devices that are busy or broken are
/// still listed, with a configuration entry saying why they are unavailable. (ALSA may print
/// diagnostics of its own to stderr while probing plugin devices.)
///
/// # Errors
///
/// [`Error::Device`] if the audio system cannot enumerate devices at all.
pub fn list_input_devices() -> Result<Vec<DeviceInfo>> {
    let host = cpal::default_host();
    let default_name = host.default_input_device().map(|d| device_name(&d));
    let devices = input_devices(&host)?;
    Ok(devices
        .iter()
        .enumerate()
        .map(|(index, device)| {
            let name = device_name(device);
            let description = device
                .description()
                .map(|d| d.name().to_string())
                .unwrap_or_else(|_| name.clone());
            let configs = match device.supported_input_configs() {
                Ok(ranges) => describe_ranges(&ranges.collect::<Vec<_>>()),
                Err(e) => vec![format!("unavailable: {e}")],
            };
            let default_config = device.default_input_config().ok().map(|c| {
                format!(
                    "{} ch, {} Hz, {}",
                    c.channels(),
                    c.sample_rate(),
                    c.sample_format()
                )
            });
            DeviceInfo {
                index,
                is_default: default_name.as_deref() == Some(name.as_str()),
                name,
                description,
                default_config,
                configs,
            }
        })
        .collect())
}

/// The name a device is listed and selected by.
pub(super) fn device_name(device: &cpal::Device) -> String {
    device
        .id()
        .map(|id| id.id().to_string())
        .or_else(|_| device.description().map(|d| d.name().to_string()))
        .unwrap_or_else(|_| "(unnamed device)".to_string())
}

pub(super) fn input_devices(host: &cpal::Host) -> Result<Vec<cpal::Device>> {
    Ok(host
        .input_devices()
        .map_err(|e| Error::Device {
            device: format!("(host {})", host.id().name()),
            reason: format!("cannot list the input devices: {e}"),
        })?
        .collect())
}

/// Resolves `--device`: none → the default device; an index; an exact name; or a
/// case-insensitive substring of one name or description.
pub(super) fn find_device(host: &cpal::Host, wanted: Option<&str>) -> Result<cpal::Device> {
    let not_found = |wanted: &str, reason: String, devices: &[cpal::Device]| {
        let list = if devices.is_empty() {
            "there are no input devices".to_string()
        } else {
            let names: Vec<String> = devices
                .iter()
                .enumerate()
                .map(|(i, d)| format!("{i}: {}", device_name(d)))
                .collect();
            format!("available input devices: {}", names.join(", "))
        };
        Error::Device {
            device: wanted.to_string(),
            reason: format!("{reason}; {list}"),
        }
    };
    let Some(wanted) = wanted else {
        return host.default_input_device().ok_or_else(|| {
            let devices = input_devices(host).unwrap_or_default();
            not_found(
                "(default)",
                "there is no default input device".into(),
                &devices,
            )
        });
    };
    let devices = input_devices(host)?;
    if let Ok(index) = wanted.trim().parse::<usize>() {
        let n = devices.len();
        return devices.into_iter().nth(index).ok_or_else(|| {
            let devices = input_devices(host).unwrap_or_default();
            not_found(
                wanted,
                format!("no input device has index {index} (there are {n})"),
                &devices,
            )
        });
    }
    if let Some(i) = devices.iter().position(|d| device_name(d) == wanted) {
        return Ok(devices.into_iter().nth(i).expect("position is in range"));
    }
    let needle = wanted.to_lowercase();
    let matches: Vec<usize> = devices
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            device_name(d).to_lowercase().contains(&needle)
                || d.description()
                    .is_ok_and(|desc| desc.name().to_lowercase().contains(&needle))
        })
        .map(|(i, _)| i)
        .collect();
    match matches[..] {
        [i] => Ok(devices.into_iter().nth(i).expect("index is in range")),
        [] => Err(not_found(
            wanted,
            "no input device has this name or index".into(),
            &devices,
        )),
        _ => {
            let names: Vec<String> = matches
                .iter()
                .map(|&i| format!("{i}: {}", device_name(&devices[i])))
                .collect();
            Err(Error::Device {
                device: wanted.to_string(),
                reason: format!(
                    "matches several input devices ({}); give the full name or the index",
                    names.join(", ")
                ),
            })
        }
    }
}

/// Preference order of sample formats (lower is better); DSD cannot be used.
pub(super) fn format_rank(f: SampleFormat) -> Option<u8> {
    Some(match f {
        SampleFormat::F32 => 0,
        SampleFormat::I16 => 1,
        SampleFormat::I32 => 2,
        SampleFormat::I24 => 3,
        SampleFormat::F64 => 4,
        SampleFormat::U16 => 5,
        SampleFormat::I8 => 6,
        SampleFormat::U8 => 7,
        SampleFormat::U24 => 8,
        SampleFormat::U32 => 9,
        SampleFormat::I64 => 10,
        SampleFormat::U64 => 11,
        _ => return None,
    })
}

/// Picks the configuration range and rate to open: the device's default channel count when
/// possible, the rate per [`MicOptions::native_rate`], the best sample format.
pub(super) fn choose_config(
    ranges: &[SupportedStreamConfigRange],
    default_channels: Option<u16>,
    opts: &MicOptions,
) -> std::result::Result<(SupportedStreamConfigRange, u32), String> {
    let usable: Vec<&SupportedStreamConfigRange> = ranges
        .iter()
        .filter(|r| {
            format_rank(r.sample_format()).is_some() && r.channels() > 0 && r.channels() <= 64
        })
        .collect();
    if usable.is_empty() {
        return Err("it offers no usable input configuration".into());
    }
    let rates: Vec<u32> = match opts.native_rate {
        Some(rate) => vec![rate],
        None => [opts.target_rate]
            .into_iter()
            .chain(PREFERRED_RATES)
            .collect(),
    };
    // Rank: rate preference first, then the default channel count, then fewer channels, then
    // the sample format.
    type Key = (usize, bool, u16, u8);
    let mut best: Option<(Key, &SupportedStreamConfigRange, u32)> = None;
    for r in &usable {
        let rank_fmt = format_rank(r.sample_format()).unwrap_or(u8::MAX);
        let not_default_ch = default_channels.is_some_and(|c| c != r.channels());
        let rate = rates
            .iter()
            .enumerate()
            .find(|(_, rate)| r.contains_rate(**rate))
            .map(|(i, rate)| (i, *rate));
        let (rate_rank, rate) = match rate {
            Some(found) => found,
            None if opts.native_rate.is_some() => continue,
            // None of the preferred rates: the range's highest.
            None => (rates.len(), r.max_sample_rate()),
        };
        let key = (rate_rank, not_default_ch, r.channels(), rank_fmt);
        if best.as_ref().is_none_or(|(k, _, _)| key < *k) {
            best = Some((key, r, rate));
        }
    }
    match best {
        Some((_, r, rate)) => Ok((*r, rate)),
        None => Err(format!(
            "it cannot capture at {} Hz",
            opts.native_rate.unwrap_or(opts.target_rate)
        )),
    }
}

/// Human-readable summaries of configuration ranges, e.g. `1-32 ch, 1-384000 Hz, i16/f32,
/// buffer 1-699051 frames`: channel counts merged, formats offered with the same channels and
/// rates on one line, buffer sizes spanned (ALSA plugin devices offer 1-32 channels, each with
/// its own buffer range).
pub(super) fn describe_ranges(ranges: &[SupportedStreamConfigRange]) -> Vec<String> {
    struct Group {
        rates: (u32, u32),
        format: SampleFormat,
        channels: Vec<u16>,
        buffer: Option<(u32, u32)>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for r in ranges {
        let rates = (r.min_sample_rate(), r.max_sample_rate());
        let format = r.sample_format();
        let i = match groups
            .iter()
            .position(|g| g.rates == rates && g.format == format)
        {
            Some(i) => i,
            None => {
                groups.push(Group {
                    rates,
                    format,
                    channels: Vec::new(),
                    buffer: None,
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.channels.push(r.channels());
        if let SupportedBufferSize::Range { min, max } = *r.buffer_size() {
            g.buffer = Some(match g.buffer {
                Some((lo, hi)) => (lo.min(min), hi.max(max)),
                None => (min, max),
            });
        }
    }
    // Formats offered with the same channels and rates share a line.
    type Line = (String, Vec<SampleFormat>, Option<(u32, u32)>);
    let mut lines: Vec<Line> = Vec::new();
    for mut g in groups {
        g.channels.sort_unstable();
        g.channels.dedup();
        let (min, max) = g.rates;
        let rates = if min == max {
            format!("{min} Hz")
        } else {
            format!("{min}-{max} Hz")
        };
        let head = format!("{} ch, {rates}", compact_ranges(&g.channels));
        match lines.iter_mut().find(|(h, _, _)| *h == head) {
            Some((_, formats, buffer)) => {
                formats.push(g.format);
                *buffer = match (*buffer, g.buffer) {
                    (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
                    (x, y) => x.or(y),
                };
            }
            None => lines.push((head, vec![g.format], g.buffer)),
        }
    }
    lines
        .into_iter()
        .map(|(head, formats, buffer)| {
            let formats: Vec<String> = formats.iter().map(ToString::to_string).collect();
            let buffer = match buffer {
                Some((lo, hi)) => format!(", buffer {lo}-{hi} frames"),
                None => String::new(),
            };
            format!("{head}, {}{buffer}", formats.join("/"))
        })
        .collect()
}

/// `[1, 2, 3, 6]` → `1-3, 6`.
pub(super) fn compact_ranges(values: &[u16]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let mut j = i;
        while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            values[i].to_string()
        } else {
            format!("{}-{}", values[i], values[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}
