//! Subcommands. Each lives in its own file; this one only dispatches.

mod batch;
mod common;
mod devices;
mod embed;
mod enroll;
mod features;
mod live;
mod publish;
mod sequence;
mod serve;
mod submit;
mod video;
#[cfg(feature = "window")]
mod window;
mod worker;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Real-time sequence recognition on audio and video.
#[derive(Debug, Parser)]
#[command(name = "seqrec", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Extract log-mel / MFCC features of an audio file into a .npy array [frames, bins].
    Features(features::Args),
    /// Run a recurrent model (RNN/LSTM/GRU, or any stateful ONNX model) over a
    /// feature array, carrying its state across chunks.
    Sequence(sequence::Args),
    /// Recognize recorded files (or folders of them) with a bundle: events or posteriors
    /// as JSON Lines or CSV, in input order.
    Batch(batch::Args),
    /// Recognize live input (microphone, or camera / live FFmpeg input for video bundles):
    /// events as they happen.
    Live(live::Args),
    /// Write what a bundle's embedder (its frozen CNN) makes of a video or audio file:
    /// a .npy array [steps, dims], e.g. per-frame CNN features of a video.
    Embed(embed::Args),
    /// Make a bundle that spots your own word from 3-5 recordings of it (templates on a
    /// bundle's speech embedding, threshold checked against keyword-free audio).
    Enroll(enroll::Args),
    /// Serve many concurrent streams over WebSocket (and whole files over HTTP), with the
    /// model calls of all streams batched together.
    Serve(serve::Args),
    /// Join a NATS JetStream cluster as a worker: run the batch jobs and live streams of
    /// the bundles given, with other workers on any machines.
    Worker(worker::Args),
    /// Run files on a cluster's workers (`seqrec worker`): the same JSON Lines as `seqrec
    /// batch`, in input order; a job whose worker dies is done by another.
    Submit(submit::Args),
    /// List audio input devices and their configurations.
    Devices(devices::Args),
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Features(a) => features::run(a),
        Command::Sequence(a) => sequence::run(a),
        Command::Batch(a) => batch::run(a),
        Command::Live(a) => live::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Enroll(a) => enroll::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Worker(a) => worker::run(a),
        Command::Submit(a) => submit::run(a),
        Command::Devices(a) => devices::run(a),
    }
}
