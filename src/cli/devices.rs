//! `seqrec devices`: the audio input devices and cameras, to pick `--device` from.

use std::process::ExitCode;

use anyhow::Context;
use seqrec::source::mic::{DeviceInfo, list_input_devices};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON (one array of objects) instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let devices = list_input_devices().context("listing the audio input devices")?;
    // No camera (or no V4L2 at all) is not an error for an audio user.
    let cameras = seqrec::source::video::camera::list().unwrap_or_default();
    if a.json {
        let list: Vec<serde_json::Value> = devices.iter().map(to_json).collect();
        let cams: Vec<serde_json::Value> = cameras
            .iter()
            .map(|c| serde_json::json!({"id": c.id, "name": c.name, "description": c.description}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"audio": list, "cameras": cams}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if cameras.is_empty() {
        println!("Cameras: none found (seqrec live --camera needs a V4L2 device /dev/videoN)");
    } else {
        println!("Cameras (choose one with seqrec live --camera --device ID):");
        for c in &cameras {
            println!("  {:>3}  {}  ({})", c.id, c.name, c.description);
        }
    }
    if devices.is_empty() {
        eprintln!("no audio input devices found");
        return Ok(ExitCode::FAILURE);
    }
    println!("Audio input devices (* = default; choose one with --device INDEX or --device NAME):");
    for d in &devices {
        let mark = if d.is_default { '*' } else { ' ' };
        if d.description == d.name {
            println!("{mark}{:>3}  {}", d.index, d.name);
        } else {
            println!("{mark}{:>3}  {}  ({})", d.index, d.name, d.description);
        }
        if let Some(c) = &d.default_config {
            println!("       default: {c}");
        }
        for c in &d.configs {
            println!("       {c}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(d: &DeviceInfo) -> serde_json::Value {
    serde_json::json!({
        "index": d.index,
        "name": d.name,
        "description": d.description,
        "default": d.is_default,
        "default_config": d.default_config,
        "configs": d.configs,
    })
}
