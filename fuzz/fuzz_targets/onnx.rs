//! The hand-written ONNX protobuf reader on arbitrary bytes: a model file is user input.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = seqrec::onnx::Model::parse(data, std::path::Path::new("fuzz.onnx"));
});
