//! Protobuf wire-format reader and the ONNX message decoders.
//!
//! Field numbers follow `onnx.proto` (checked against onnx 1.23's copy).
//! The reader is zero-copy over the input slice; every length is checked
//! against the bytes that remain before anything is sliced or allocated, and
//! every loop consumes at least one byte per iteration, so decoding is linear
//! in the input size and cannot panic.

use std::fmt;

use super::{
    AttrValue, Attribute, DATA_TYPE_DOUBLE, DATA_TYPE_FLOAT, DATA_TYPE_INT32, DATA_TYPE_INT64, Dim,
    Graph, Model, Node, Tensor, TensorData, ValueInfo, data_type_name, numel,
};

/// Deepest message nesting the reader accepts. The decoders below never
/// recurse into recursive messages (sub-graphs, nested type protos), so real
/// files stay far below this; it is a backstop.
const MAX_DEPTH: u32 = 32;

/// Largest valid protobuf field number.
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

/// Why decoding failed, plus where in the model tree (innermost segment first).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodeError {
    reason: String,
    /// Path segments from the failing message up to the root, innermost first.
    path: Vec<String>,
}

impl DecodeError {
    fn new(reason: impl Into<String>) -> Self {
        DecodeError {
            reason: reason.into(),
            path: Vec::new(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)?;
        if !self.path.is_empty() {
            f.write_str(" (at ")?;
            for (i, seg) in self.path.iter().rev().enumerate() {
                if i > 0 && !seg.starts_with('[') {
                    f.write_str(".")?;
                }
                f.write_str(seg)?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

type DResult<T> = std::result::Result<T, DecodeError>;

/// Adds a path segment to an error on its way up.
trait Context<T> {
    fn at(self, seg: impl FnOnce() -> String) -> DResult<T>;
}

impl<T> Context<T> for DResult<T> {
    fn at(self, seg: impl FnOnce() -> String) -> DResult<T> {
        self.map_err(|mut e| {
            e.path.push(seg());
            e
        })
    }
}

// ---------------------------------------------------------------------------
// Wire format
// ---------------------------------------------------------------------------

/// The payload of one field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1 (little-endian 64 bits).
    Fixed64(u64),
    /// Wire type 2; `start` is the absolute offset of the first payload byte.
    Len { bytes: &'a [u8], start: usize },
    /// Wire type 5 (little-endian 32 bits).
    Fixed32(u32),
}

impl Value<'_> {
    fn wire_name(&self) -> &'static str {
        match self {
            Value::Varint(_) => "varint",
            Value::Fixed64(_) => "64-bit",
            Value::Len { .. } => "length-delimited",
            Value::Fixed32(_) => "32-bit",
        }
    }
}

/// One decoded field: its number, payload and where it was found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field<'a> {
    pub(crate) number: u32,
    pub(crate) value: Value<'a>,
    /// Absolute offset of the field's tag.
    pub(crate) offset: usize,
    /// The message type the field belongs to (for errors).
    msg: &'static str,
    /// Nesting depth of the containing message.
    depth: u32,
}

/// Iterates over the fields of one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Absolute offset of `buf[0]` in the file.
    base: usize,
    msg: &'static str,
    depth: u32,
}

impl<'a> Reader<'a> {
    /// A reader over a top-level message.
    pub(crate) fn new(buf: &'a [u8], msg: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
            msg,
            depth: 0,
        }
    }

    fn err_at(&self, at: usize, what: impl fmt::Display) -> DecodeError {
        self.err_at_detail(at, what, "")
    }

    /// "`what` in `msg` at byte N`detail`".
    fn err_at_detail(&self, at: usize, what: impl fmt::Display, detail: &str) -> DecodeError {
        DecodeError::new(format!(
            "{what} in {} at byte {}{detail}",
            self.msg,
            self.base + at
        ))
    }

    /// Reads a varint starting at `self.pos`.
    fn varint(&mut self, what: &str) -> DResult<u64> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.err_at(start, format_args!("truncated varint ({what})")));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(self.err_at(start, format_args!("varint overflows 64 bits ({what})")));
            }
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.err_at(start, format_args!("varint longer than 10 bytes ({what})")))
    }

    /// Takes `n` bytes starting at `self.pos`.
    fn take(&mut self, n: u64, tag_at: usize, number: u64, kind: &str) -> DResult<&'a [u8]> {
        let remaining = self.buf.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= remaining => {
                let bytes = &self.buf[self.pos..self.pos + n];
                self.pos += n;
                Ok(bytes)
            }
            _ => Err(self.err_at_detail(
                tag_at,
                format_args!("truncated {kind} field {number}"),
                &format!(": needs {n} bytes, only {remaining} remain"),
            )),
        }
    }

    /// The next field, or `None` at the end of the message.
    pub(crate) fn next_field(&mut self) -> DResult<Option<Field<'a>>> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let tag_at = self.pos;
        let tag = self.varint("field tag")?;
        let number = tag >> 3;
        let wire = tag & 7;
        if number == 0 || number > MAX_FIELD_NUMBER {
            return Err(self.err_at(
                tag_at,
                format_args!("invalid field number {number} (tag {tag:#x})"),
            ));
        }
        let value = match wire {
            0 => Value::Varint(self.varint("varint field")?),
            1 => {
                let b = self.take(8, tag_at, number, "64-bit")?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let len = self.varint("length prefix")?;
                let start = self.base + self.pos;
                let bytes = self.take(len, tag_at, number, "length-delimited")?;
                Value::Len { bytes, start }
            }
            5 => {
                let b = self.take(4, tag_at, number, "32-bit")?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                Value::Fixed32(u32::from_le_bytes(a))
            }
            3 | 4 => {
                return Err(self.err_at(
                    tag_at,
                    format_args!(
                        "field {number} uses the deprecated group encoding (wire type {wire}), which ONNX never uses"
                    ),
                ));
            }
            _ => {
                return Err(self.err_at(
                    tag_at,
                    format_args!("field {number} has invalid wire type {wire}"),
                ));
            }
        };
        Ok(Some(Field {
            // `number` <= MAX_FIELD_NUMBER, so this cannot truncate.
            number: number as u32,
            value,
            offset: self.base + tag_at,
            msg: self.msg,
            depth: self.depth,
        }))
    }
}

impl<'a> Field<'a> {
    fn wrong_type(&self, expected: &str) -> DecodeError {
        DecodeError::new(format!(
            "field {} in {} at byte {} has wire type {}, expected {expected}",
            self.number,
            self.msg,
            self.offset,
            self.value.wire_name()
        ))
    }

    fn varint(&self) -> DResult<u64> {
        match self.value {
            Value::Varint(v) => Ok(v),
            _ => Err(self.wrong_type("varint")),
        }
    }

    /// An `int64` field (two's complement in the varint).
    fn int64(&self) -> DResult<i64> {
        Ok(self.varint()? as i64)
    }

    /// An `int32` (or enum) field: protobuf truncates the varint to 32 bits.
    fn int32(&self) -> DResult<i32> {
        Ok(self.varint()? as i32)
    }

    fn float(&self) -> DResult<f32> {
        match self.value {
            Value::Fixed32(v) => Ok(f32::from_bits(v)),
            _ => Err(self.wrong_type("32-bit")),
        }
    }

    fn bytes(&self) -> DResult<&'a [u8]> {
        match self.value {
            Value::Len { bytes, .. } => Ok(bytes),
            _ => Err(self.wrong_type("length-delimited")),
        }
    }

    fn string(&self) -> DResult<String> {
        let bytes = self.bytes()?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(DecodeError::new(format!(
                "string field {} in {} at byte {} is not valid UTF-8 ({e})",
                self.number, self.msg, self.offset
            ))),
        }
    }

    /// A reader over an embedded message of type `msg`.
    fn message(&self, msg: &'static str) -> DResult<Reader<'a>> {
        let Value::Len { bytes, start } = self.value else {
            return Err(self.wrong_type("length-delimited"));
        };
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::new(format!(
                "{msg} at byte {} is nested more than {MAX_DEPTH} messages deep",
                self.offset
            )));
        }
        Ok(Reader {
            buf: bytes,
            pos: 0,
            base: start,
            msg,
            depth: self.depth + 1,
        })
    }

    /// Appends a repeated varint field, packed or not.
    fn push_varints<T>(&self, out: &mut Vec<T>, conv: impl Fn(u64) -> T) -> DResult<()> {
        match self.value {
            Value::Varint(v) => out.push(conv(v)),
            Value::Len { bytes, start } => {
                let mut r = Reader {
                    buf: bytes,
                    pos: 0,
                    base: start,
                    msg: self.msg,
                    depth: self.depth,
                };
                while r.pos < bytes.len() {
                    let v = r.varint("packed field").at_field(self)?;
                    out.push(conv(v));
                }
            }
            _ => return Err(self.wrong_type("varint or packed varints")),
        }
        Ok(())
    }

    /// Appends a repeated 32-bit field, packed or not.
    fn push_fixed32<T>(&self, out: &mut Vec<T>, conv: impl Fn(u32) -> T) -> DResult<()> {
        match self.value {
            Value::Fixed32(v) => out.push(conv(v)),
            Value::Len { bytes, .. } => {
                if bytes.len() % 4 != 0 {
                    return Err(self.packed_len_error(4, bytes.len()));
                }
                out.reserve(bytes.len() / 4);
                out.extend(
                    bytes
                        .chunks_exact(4)
                        .map(|c| conv(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
                );
            }
            _ => return Err(self.wrong_type("32-bit or packed 32-bit values")),
        }
        Ok(())
    }

    /// Appends a repeated 64-bit field, packed or not.
    fn push_fixed64<T>(&self, out: &mut Vec<T>, conv: impl Fn(u64) -> T) -> DResult<()> {
        match self.value {
            Value::Fixed64(v) => out.push(conv(v)),
            Value::Len { bytes, .. } => {
                if bytes.len() % 8 != 0 {
                    return Err(self.packed_len_error(8, bytes.len()));
                }
                out.reserve(bytes.len() / 8);
                out.extend(bytes.chunks_exact(8).map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    conv(u64::from_le_bytes(a))
                }));
            }
            _ => return Err(self.wrong_type("64-bit or packed 64-bit values")),
        }
        Ok(())
    }

    fn packed_len_error(&self, size: usize, len: usize) -> DecodeError {
        DecodeError::new(format!(
            "packed field {} in {} at byte {} has {len} bytes, not a multiple of {size}",
            self.number, self.msg, self.offset
        ))
    }
}

/// Mentions the packed field in an error from inside its payload.
trait AtField<T> {
    fn at_field(self, f: &Field<'_>) -> DResult<T>;
}

impl<T> AtField<T> for DResult<T> {
    fn at_field(self, f: &Field<'_>) -> DResult<T> {
        self.map_err(|mut e| {
            e.reason = format!("{} (inside packed field {})", e.reason, f.number);
            e
        })
    }
}

// ---------------------------------------------------------------------------
// ONNX messages
// ---------------------------------------------------------------------------

/// Decodes a serialized `ModelProto`.
pub(crate) fn decode_model(bytes: &[u8]) -> DResult<Model> {
    let mut r = Reader::new(bytes, "ModelProto");
    let mut ir_version = 0;
    let mut opset: Option<i64> = None;
    let mut graph = None;
    let mut n_opsets = 0usize;
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => ir_version = f.int64()?,
            7 => {
                graph = Some(decode_graph(f.message("GraphProto")?).at(|| "graph".to_owned())?);
            }
            8 => {
                let i = n_opsets;
                n_opsets += 1;
                let (domain, version) = decode_opset(f.message("OperatorSetIdProto")?)
                    .at(|| format!("opset_import[{i}]"))?;
                if domain.is_empty() || domain == "ai.onnx" {
                    if let Some(prev) = opset {
                        return Err(DecodeError::new(format!(
                            "the default operator set is imported twice (versions {prev} and {version}) in ModelProto at byte {}",
                            f.offset
                        )));
                    }
                    opset = Some(version);
                }
            }
            _ => {}
        }
    }
    let Some(graph) = graph else {
        return Err(DecodeError::new(if bytes.is_empty() {
            "the file is empty".to_owned()
        } else {
            "ModelProto has no graph (field 7); is this an ONNX model file?".to_owned()
        }));
    };
    Ok(Model {
        ir_version,
        opset: opset.unwrap_or(0),
        graph,
    })
}

fn decode_opset(mut r: Reader<'_>) -> DResult<(String, i64)> {
    let mut domain = String::new();
    let mut version = 0;
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => domain = f.string()?,
            2 => version = f.int64()?,
            _ => {}
        }
    }
    Ok((domain, version))
}

fn decode_graph(mut r: Reader<'_>) -> DResult<Graph> {
    let mut g = Graph::default();
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => {
                let i = g.nodes.len();
                g.nodes
                    .push(decode_node(f.message("NodeProto")?).at(|| format!("node[{i}]"))?);
            }
            2 => g.name = f.string()?,
            5 => {
                let i = g.initializers.len();
                g.initializers.push(
                    decode_tensor(f.message("TensorProto")?).at(|| format!("initializer[{i}]"))?,
                );
            }
            11 => {
                let i = g.inputs.len();
                g.inputs.push(
                    decode_value_info(f.message("ValueInfoProto")?).at(|| format!("input[{i}]"))?,
                );
            }
            12 => {
                let i = g.outputs.len();
                g.outputs.push(
                    decode_value_info(f.message("ValueInfoProto")?)
                        .at(|| format!("output[{i}]"))?,
                );
            }
            _ => {}
        }
    }
    Ok(g)
}

fn decode_node(mut r: Reader<'_>) -> DResult<Node> {
    let mut n = Node::default();
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => n.inputs.push(f.string()?),
            2 => n.outputs.push(f.string()?),
            3 => n.name = f.string()?,
            4 => n.op_type = f.string()?,
            5 => {
                let i = n.attributes.len();
                n.attributes.push(
                    decode_attribute(f.message("AttributeProto")?)
                        .at(|| format!("attribute[{i}]"))?,
                );
            }
            7 => n.domain = f.string()?,
            _ => {}
        }
    }
    Ok(n)
}

/// `AttributeProto.AttributeType` codes.
mod attr_type {
    pub const UNDEFINED: i32 = 0;
    pub const FLOAT: i32 = 1;
    pub const INT: i32 = 2;
    pub const STRING: i32 = 3;
    pub const TENSOR: i32 = 4;
    pub const FLOATS: i32 = 6;
    pub const INTS: i32 = 7;
    pub const STRINGS: i32 = 8;
}

fn decode_attribute(mut r: Reader<'_>) -> DResult<Attribute> {
    let mut name = String::new();
    let mut ty = attr_type::UNDEFINED;
    let mut f_val: Option<f32> = None;
    let mut i_val: Option<i64> = None;
    let mut s_val: Option<&[u8]> = None;
    // The tensor is decoded only if it turns out to be the attribute's value.
    let mut t_val: Option<Reader<'_>> = None;
    let mut has_other = false;
    let mut floats = Vec::new();
    let mut ints = Vec::new();
    let mut strings = Vec::new();
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => name = f.string()?,
            2 => f_val = Some(f.float()?),
            3 => i_val = Some(f.int64()?),
            4 => s_val = Some(f.bytes()?),
            5 => t_val = Some(f.message("TensorProto")?),
            7 => f.push_fixed32(&mut floats, f32::from_bits)?,
            8 => f.push_varints(&mut ints, |v| v as i64)?,
            9 => strings.push(f.bytes()?.to_vec()),
            20 => ty = f.int32()?,
            // g, tensors, graphs, tp, type_protos, sparse_tensor(s)
            6 | 10 | 11 | 14 | 15 | 22 | 23 => has_other = true,
            _ => {}
        }
    }
    let named = |e: DecodeError| -> DecodeError {
        let mut e = e;
        e.reason = format!("attribute `{name}`: {}", e.reason);
        e
    };
    if ty == attr_type::UNDEFINED {
        // Files from before IR version 0.0.2 carry no type: infer it from the
        // one field that is set.
        let set = [
            f_val.is_some(),
            i_val.is_some(),
            s_val.is_some(),
            t_val.is_some(),
            !floats.is_empty(),
            !ints.is_empty(),
            !strings.is_empty(),
            has_other,
        ];
        if set.iter().filter(|&&b| b).count() == 1 {
            ty = match set.iter().position(|&b| b) {
                Some(0) => attr_type::FLOAT,
                Some(1) => attr_type::INT,
                Some(2) => attr_type::STRING,
                Some(3) => attr_type::TENSOR,
                Some(4) => attr_type::FLOATS,
                Some(5) => attr_type::INTS,
                Some(6) => attr_type::STRINGS,
                _ => attr_type::UNDEFINED,
            };
        }
    }
    let value = match ty {
        attr_type::FLOAT => AttrValue::Float(f_val.unwrap_or(0.0)),
        attr_type::INT => AttrValue::Int(i_val.unwrap_or(0)),
        attr_type::STRING => AttrValue::String(s_val.unwrap_or_default().to_vec()),
        attr_type::TENSOR => match t_val {
            Some(t) => AttrValue::Tensor(decode_tensor(t).at(|| "t".to_owned())?),
            None => {
                return Err(named(DecodeError::new(
                    "has type TENSOR but carries no tensor (field 5)",
                )));
            }
        },
        attr_type::FLOATS => AttrValue::Floats(floats),
        attr_type::INTS => AttrValue::Ints(ints),
        attr_type::STRINGS => AttrValue::Strings(strings),
        _ => AttrValue::Other,
    };
    Ok(Attribute { name, value })
}

/// `TensorProto.DataLocation.EXTERNAL`.
const DATA_LOCATION_EXTERNAL: i32 = 1;

fn decode_tensor(mut r: Reader<'_>) -> DResult<Tensor> {
    let start = r.base;
    let mut name = String::new();
    let mut dims: Vec<i64> = Vec::new();
    let mut data_type = 0;
    let mut raw: Option<&[u8]> = None;
    let mut floats: Vec<f32> = Vec::new();
    let mut int32s: Vec<i32> = Vec::new();
    let mut int64s: Vec<i64> = Vec::new();
    let mut doubles: Vec<f64> = Vec::new();
    // Typed fields for element types this decoder does not convert.
    let mut other_typed: Option<u32> = None;
    let mut external_location: Option<String> = None;
    let mut external = false;
    let mut segmented = false;
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => f.push_varints(&mut dims, |v| v as i64)?,
            2 => data_type = f.int32()?,
            3 => segmented = true,
            4 => f.push_fixed32(&mut floats, f32::from_bits)?,
            5 => f.push_varints(&mut int32s, |v| v as i32)?,
            6 | 11 => other_typed = Some(f.number),
            7 => f.push_varints(&mut int64s, |v| v as i64)?,
            8 => name = f.string()?,
            9 => raw = Some(f.bytes()?),
            10 => f.push_fixed64(&mut doubles, f64::from_bits)?,
            13 => {
                external = true;
                let (key, value) = decode_string_entry(f.message("StringStringEntryProto")?)?;
                if key == "location" {
                    external_location = Some(value);
                }
            }
            14 => external |= f.int32()? == DATA_LOCATION_EXTERNAL,
            _ => {}
        }
    }
    let fail = |reason: String| -> DecodeError {
        DecodeError::new(format!(
            "tensor `{name}` (TensorProto at byte {start}): {reason}"
        ))
    };
    if external {
        let loc = match &external_location {
            Some(l) => format!(" (in `{l}`)"),
            None => String::new(),
        };
        return Err(fail(format!(
            "its data is stored outside the model file{loc}; only self-contained .onnx files are supported \
             — re-save the model with its data embedded (e.g. onnx.save(onnx.load(path), out, save_as_external_data=False))"
        )));
    }
    if segmented {
        return Err(fail(
            "segmented tensors (TensorProto.segment) are not supported".to_owned(),
        ));
    }
    if let Some(&d) = dims.iter().find(|&&d| d < 0) {
        return Err(fail(format!("negative dimension {d} in dims {dims:?}")));
    }
    let Some(n) = numel(&dims) else {
        return Err(fail(format!(
            "the number of elements of dims {dims:?} overflows"
        )));
    };

    let ty = data_type_name(data_type);
    // Which typed field holds the values of each supported type.
    let (elem_size, own_field) = match data_type {
        DATA_TYPE_FLOAT => (4, 4),
        DATA_TYPE_INT32 => (4, 5),
        DATA_TYPE_INT64 => (8, 7),
        DATA_TYPE_DOUBLE => (8, 10),
        _ => {
            return Ok(Tensor {
                name,
                dims,
                data_type,
                data: TensorData::Other,
            });
        }
    };
    let typed_counts = [
        (4, floats.len()),
        (5, int32s.len()),
        (7, int64s.len()),
        (10, doubles.len()),
    ];
    for (field, count) in typed_counts {
        if field != own_field && count > 0 {
            return Err(fail(format!(
                "a {ty} tensor, but it has values in field {field} (expected raw_data or field {own_field})"
            )));
        }
    }
    if let Some(field) = other_typed {
        return Err(fail(format!(
            "a {ty} tensor, but it has values in field {field} (expected raw_data or field {own_field})"
        )));
    }
    let typed_count = typed_counts
        .iter()
        .find(|(f, _)| *f == own_field)
        .map_or(0, |(_, c)| *c);

    let data = if let Some(raw) = raw {
        if typed_count > 0 {
            return Err(fail(format!(
                "has both raw_data and {typed_count} values in field {own_field}"
            )));
        }
        let expected = n.checked_mul(elem_size);
        if expected != Some(raw.len()) {
            return Err(fail(format!(
                "raw_data has {} bytes, but dims {dims:?} of {ty} need {}",
                raw.len(),
                match expected {
                    Some(e) => e.to_string(),
                    None => "more than fit in memory".to_owned(),
                }
            )));
        }
        match data_type {
            DATA_TYPE_FLOAT => TensorData::F32(
                raw.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            DATA_TYPE_INT32 => TensorData::I32(
                raw.chunks_exact(4)
                    .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            ),
            DATA_TYPE_INT64 => TensorData::I64(raw.chunks_exact(8).map(le_i64).collect()),
            _ => TensorData::F64(
                raw.chunks_exact(8)
                    .map(|c| f64::from_bits(le_i64(c) as u64))
                    .collect(),
            ),
        }
    } else {
        if typed_count != n {
            return Err(fail(format!(
                "has {typed_count} values in field {own_field}, but dims {dims:?} of {ty} need {n}"
            )));
        }
        match data_type {
            DATA_TYPE_FLOAT => TensorData::F32(floats),
            DATA_TYPE_INT32 => TensorData::I32(int32s),
            DATA_TYPE_INT64 => TensorData::I64(int64s),
            _ => TensorData::F64(doubles),
        }
    };
    Ok(Tensor {
        name,
        dims,
        data_type,
        data,
    })
}

fn le_i64(c: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    i64::from_le_bytes(a)
}

fn decode_string_entry(mut r: Reader<'_>) -> DResult<(String, String)> {
    let mut key = String::new();
    let mut value = String::new();
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => key = f.string()?,
            2 => value = f.string()?,
            _ => {}
        }
    }
    Ok((key, value))
}

fn decode_value_info(mut r: Reader<'_>) -> DResult<ValueInfo> {
    let mut v = ValueInfo::default();
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => v.name = f.string()?,
            2 => {
                let (elem_type, shape) =
                    decode_type(f.message("TypeProto")?).at(|| "type".to_owned())?;
                v.elem_type = elem_type;
                v.shape = shape;
            }
            _ => {}
        }
    }
    Ok(v)
}

/// `TypeProto`: the element type and shape of a tensor type; `(0, [])` for
/// other kinds of type.
fn decode_type(mut r: Reader<'_>) -> DResult<(i32, Vec<Dim>)> {
    let mut out = (0, Vec::new());
    while let Some(f) = r.next_field()? {
        match f.number {
            1 => {
                let mut t = f.message("TypeProto.Tensor")?;
                out = (0, Vec::new());
                while let Some(f) = t.next_field()? {
                    match f.number {
                        1 => out.0 = f.int32()?,
                        2 => out.1 = decode_shape(f.message("TensorShapeProto")?)?,
                        _ => {}
                    }
                }
            }
            // Other members of the `value` oneof replace the tensor type.
            4 | 5 | 7 | 8 | 9 => out = (0, Vec::new()),
            _ => {}
        }
    }
    Ok(out)
}

fn decode_shape(mut r: Reader<'_>) -> DResult<Vec<Dim>> {
    let mut dims = Vec::new();
    while let Some(f) = r.next_field()? {
        if f.number == 1 {
            let mut d = f.message("TensorShapeProto.Dimension")?;
            let mut dim = Dim::Unknown;
            while let Some(f) = d.next_field()? {
                match f.number {
                    1 => dim = Dim::Fixed(f.int64()?),
                    2 => dim = Dim::Param(f.string()?),
                    _ => {}
                }
            }
            dims.push(dim);
        }
    }
    Ok(dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    // --- a tiny protobuf encoder for hand-made messages ---

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn tag(field: u32, wire: u8, out: &mut Vec<u8>) {
        varint((u64::from(field) << 3) | u64::from(wire), out);
    }

    fn f_varint(field: u32, v: u64) -> Vec<u8> {
        let mut o = Vec::new();
        tag(field, 0, &mut o);
        varint(v, &mut o);
        o
    }

    fn f_len(field: u32, payload: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        tag(field, 2, &mut o);
        varint(payload.len() as u64, &mut o);
        o.extend_from_slice(payload);
        o
    }

    fn f_fixed32(field: u32, v: u32) -> Vec<u8> {
        let mut o = Vec::new();
        tag(field, 5, &mut o);
        o.extend_from_slice(&v.to_le_bytes());
        o
    }

    fn f_fixed64(field: u32, v: u64) -> Vec<u8> {
        let mut o = Vec::new();
        tag(field, 1, &mut o);
        o.extend_from_slice(&v.to_le_bytes());
        o
    }

    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    fn packed_varints(field: u32, vals: &[i64]) -> Vec<u8> {
        let mut p = Vec::new();
        for &v in vals {
            varint(v as u64, &mut p);
        }
        f_len(field, &p)
    }

    /// A model whose graph holds `graph_fields`.
    fn model(graph_fields: &[Vec<u8>]) -> Vec<u8> {
        cat(&[
            f_varint(1, 8),
            f_len(8, &cat(&[f_len(1, b""), f_varint(2, 14)])),
            f_len(7, &cat(graph_fields)),
        ])
    }

    fn err(bytes: &[u8]) -> String {
        decode_model(bytes).unwrap_err().to_string()
    }

    #[test]
    fn varint_edge_cases() {
        let mut r = Reader::new(
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
            "T",
        );
        assert_eq!(r.varint("x").unwrap(), u64::MAX);
        let mut r = Reader::new(
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            "T",
        );
        assert!(r.varint("x").unwrap_err().reason.contains("overflows"));
        let mut r = Reader::new(&[0x80; 11], "T");
        assert!(r.varint("x").unwrap_err().reason.contains("overflows"));
        let mut r = Reader::new(&[0x80, 0x80], "T");
        assert!(
            r.varint("x")
                .unwrap_err()
                .reason
                .contains("truncated varint")
        );
        // Non-minimal encodings are legal.
        let mut r = Reader::new(&[0x81, 0x80, 0x00], "T");
        assert_eq!(r.varint("x").unwrap(), 1);
    }

    #[test]
    fn minimal_model() {
        let m = decode_model(&model(&[f_len(2, b"g")])).unwrap();
        assert_eq!(m.ir_version, 8);
        assert_eq!(m.opset, 14);
        assert_eq!(m.graph.name, "g");
    }

    #[test]
    fn skips_unknown_fields_of_every_wire_type() {
        let unknown = cat(&[
            f_varint(99, u64::MAX),
            f_fixed64(98, 7),
            f_len(97, b"\xff\xff\xff"),
            f_fixed32(96, 1),
            f_varint(MAX_FIELD_NUMBER as u32, 1),
        ]);
        let node = cat(&[unknown.clone(), f_len(4, b"Relu"), unknown.clone()]);
        let bytes = cat(&[
            unknown.clone(),
            model(&[unknown.clone(), f_len(1, &node), unknown.clone()]),
            unknown,
        ]);
        let m = decode_model(&bytes).unwrap();
        assert_eq!(m.graph.nodes[0].op_type, "Relu");
    }

    #[test]
    fn groups_and_bad_wire_types_are_errors() {
        let e = err(&cat(&[f_varint(1, 8), vec![(5 << 3) | 3]]));
        assert!(e.contains("group") && e.contains("field 5"), "{e}");
        let e = err(&[(5 << 3) | 4]);
        assert!(e.contains("group"), "{e}");
        let e = err(&[(5 << 3) | 6]);
        assert!(e.contains("invalid wire type 6"), "{e}");
        let e = err(&[0x00]);
        assert!(e.contains("invalid field number 0"), "{e}");
        // Field number above 2^29-1.
        let mut b = Vec::new();
        varint((1u64 << 32) | 2, &mut b);
        assert!(err(&b).contains("invalid field number"));
    }

    #[test]
    fn truncated_length_prefix_reports_field_message_and_offset() {
        // graph -> node whose attribute claims 100 bytes.
        let node = cat(&[f_len(4, b"LSTM"), vec![(5 << 3) | 2, 100, 1, 2]]);
        let bytes = model(&[f_len(1, &node)]);
        let e = err(&bytes);
        let node_start = bytes.len() - node.len();
        let attr_tag = node_start + 6;
        assert_eq!(
            e,
            format!(
                "truncated length-delimited field 5 in NodeProto at byte {attr_tag}: needs 100 bytes, only 2 remain (at graph.node[0])"
            )
        );
        // A length prefix near u64::MAX must not allocate or overflow.
        let mut b = vec![(7 << 3) | 2];
        varint(u64::MAX, &mut b);
        assert!(err(&b).contains("truncated length-delimited field 7"));
    }

    #[test]
    fn wrong_wire_type_for_known_field() {
        let e = err(&f_len(1, b"x"));
        assert_eq!(
            e,
            "field 1 in ModelProto at byte 0 has wire type length-delimited, expected varint"
        );
    }

    #[test]
    fn empty_and_graphless() {
        assert_eq!(err(b""), "the file is empty");
        assert!(err(&f_varint(1, 7)).contains("no graph"));
    }

    #[test]
    fn duplicate_default_opset_is_an_error() {
        let op = |d: &[u8], v| f_len(8, &cat(&[f_len(1, d), f_varint(2, v)]));
        let ok = cat(&[op(b"com.microsoft", 1), op(b"ai.onnx", 17), f_len(7, b"")]);
        assert_eq!(decode_model(&ok).unwrap().opset, 17);
        let bad = cat(&[op(b"", 13), op(b"ai.onnx", 17), f_len(7, b"")]);
        assert!(err(&bad).contains("imported twice"));
        assert_eq!(decode_model(&f_len(7, b"")).unwrap().opset, 0);
    }

    fn tensor_bytes(fields: &[Vec<u8>]) -> Vec<u8> {
        model(&[f_len(5, &cat(fields))])
    }

    fn one_tensor(fields: &[Vec<u8>]) -> DResult<Tensor> {
        decode_model(&tensor_bytes(fields)).map(|m| m.graph.initializers[0].clone())
    }

    #[test]
    fn tensor_packed_and_unpacked() {
        let vals = [1.5f32, -2.0, 0.25, 8.0, 0.0, -0.0];
        // Packed dims, unpacked float_data.
        let mut fields = vec![packed_varints(1, &[2, 3]), f_varint(2, 1), f_len(8, b"w")];
        fields.extend(vals.iter().map(|v| f_fixed32(4, v.to_bits())));
        let t = one_tensor(&fields).unwrap();
        assert_eq!(t.dims, [2, 3]);
        assert_eq!(t.as_f32().unwrap(), vals);
        // Unpacked dims, packed float_data split over two fields (they concatenate).
        let mut p1 = Vec::new();
        let mut p2 = Vec::new();
        for v in &vals[..2] {
            p1.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        for v in &vals[2..] {
            p2.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        let t = one_tensor(&[
            f_varint(1, 2),
            f_varint(1, 3),
            f_varint(2, 1),
            f_len(4, &p1),
            f_len(4, &p2),
        ])
        .unwrap();
        assert_eq!(t.dims, [2, 3]);
        assert_eq!(t.as_f32().unwrap(), vals);
    }

    #[test]
    fn tensor_all_supported_types() {
        // int64 packed, with negative values (10-byte varints).
        let t = one_tensor(&[
            f_varint(1, 3),
            f_varint(2, 7),
            packed_varints(7, &[-1, i64::MIN, i64::MAX]),
        ])
        .unwrap();
        assert_eq!(t.as_i64().unwrap(), [-1, i64::MIN, i64::MAX]);
        // int64 raw.
        let raw: Vec<u8> = [5i64, -6].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = one_tensor(&[f_varint(1, 2), f_varint(2, 7), f_len(9, &raw)]).unwrap();
        assert_eq!(t.as_i64().unwrap(), [5, -6]);
        // int32 (sign-extended varints), unpacked.
        let t = one_tensor(&[
            f_varint(1, 2),
            f_varint(2, 6),
            f_varint(5, (-7i64) as u64),
            f_varint(5, 9),
        ])
        .unwrap();
        assert_eq!(t.as_i32().unwrap(), [-7, 9]);
        // double, unpacked and packed.
        let t = one_tensor(&[
            f_varint(1, 2),
            f_varint(2, 11),
            f_fixed64(10, 0.1f64.to_bits()),
            f_len(10, &(-3.5f64).to_bits().to_le_bytes()),
        ])
        .unwrap();
        assert_eq!(t.as_f64().unwrap(), [0.1, -3.5]);
        // float raw, scalar.
        let t = one_tensor(&[f_varint(2, 1), f_len(9, &2.5f32.to_le_bytes())]).unwrap();
        assert!(t.dims.is_empty());
        assert_eq!(t.numel(), Some(1));
        assert_eq!(t.as_f32().unwrap(), [2.5]);
        // Empty tensor.
        let t = one_tensor(&[f_varint(1, 0), f_varint(1, 4), f_varint(2, 1)]).unwrap();
        assert_eq!(t.numel(), Some(0));
        assert_eq!(t.as_f32().unwrap(), [] as [f32; 0]);
        // Unsupported type: kept, data not decoded.
        let t = one_tensor(&[f_varint(1, 2), f_varint(2, 10), f_len(9, &[0; 4])]).unwrap();
        assert_eq!(t.data, TensorData::Other);
        assert_eq!(t.data_type, 10);
    }

    #[test]
    fn tensor_inconsistencies_are_errors() {
        let e = one_tensor(&[
            f_len(8, b"w"),
            f_varint(1, 2),
            f_varint(2, 1),
            f_len(9, &[0; 4]),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("tensor `w` (TensorProto at byte "), "{e}");
        assert!(
            e.contains("raw_data has 4 bytes, but dims [2] of FLOAT need 8"),
            "{e}"
        );
        assert!(e.ends_with("(at graph.initializer[0])"), "{e}");
        // Huge dims with little data: error, no allocation.
        let e = one_tensor(&[f_varint(1, 1 << 40), f_varint(2, 1), f_len(9, &[0; 4])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("raw_data has 4 bytes"), "{e}");
        let e = one_tensor(&[f_varint(1, 1 << 62), f_varint(1, 1 << 62), f_varint(2, 1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflows"), "{e}");
        let e = one_tensor(&[f_varint(1, 1 << 61), f_varint(2, 7), f_len(9, &[0; 8])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than fit in memory"), "{e}");
        let e = one_tensor(&[f_varint(1, (-2i64) as u64), f_varint(2, 1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("negative dimension -2"), "{e}");
        let e = one_tensor(&[f_varint(1, 3), f_varint(2, 1), f_fixed32(4, 0)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("has 1 values in field 4, but dims [3] of FLOAT need 3"),
            "{e}"
        );
        let e = one_tensor(&[f_varint(2, 1), f_fixed32(4, 0), f_len(9, &[0; 4])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("both raw_data"), "{e}");
        let e = one_tensor(&[f_varint(2, 1), f_varint(7, 1)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a FLOAT tensor, but it has values in field 7"),
            "{e}"
        );
        let e = one_tensor(&[f_varint(2, 1), f_len(4, &[0; 5])])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a multiple of 4"), "{e}");
        // Missing data for a non-empty tensor.
        let e = one_tensor(&[f_varint(1, 2), f_varint(2, 7)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("has 0 values in field 7"), "{e}");
        let e = one_tensor(&[f_varint(2, 1), f_len(3, b"")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("segmented"), "{e}");
    }

    #[test]
    fn external_data_is_refused() {
        let entry = |k: &[u8], v: &[u8]| f_len(13, &cat(&[f_len(1, k), f_len(2, v)]));
        let e = one_tensor(&[
            f_len(8, b"W"),
            f_varint(1, 4),
            f_varint(2, 1),
            entry(b"location", b"weights.bin"),
            entry(b"offset", b"0"),
            f_varint(14, 1),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("tensor `W`"), "{e}");
        assert!(
            e.contains("outside the model file (in `weights.bin`)"),
            "{e}"
        );
        let e = one_tensor(&[f_varint(2, 1), f_varint(14, 1)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the model file"), "{e}");
    }

    fn one_attr(fields: &[Vec<u8>]) -> DResult<Attribute> {
        let node = cat(&[f_len(4, b"Op"), f_len(5, &cat(fields))]);
        decode_model(&model(&[f_len(1, &node)])).map(|m| m.graph.nodes[0].attributes[0].clone())
    }

    #[test]
    fn attributes() {
        let a = one_attr(&[
            f_len(1, b"alpha"),
            f_varint(20, 1),
            f_fixed32(2, 0.5f32.to_bits()),
        ])
        .unwrap();
        assert_eq!(a.value, AttrValue::Float(0.5));
        let a = one_attr(&[
            f_len(1, b"axis"),
            f_varint(20, 2),
            f_varint(3, (-1i64) as u64),
        ])
        .unwrap();
        assert_eq!(a.value, AttrValue::Int(-1));
        // Type given but value absent: the protobuf default.
        let a = one_attr(&[f_len(1, b"k"), f_varint(20, 2)]).unwrap();
        assert_eq!(a.value, AttrValue::Int(0));
        let a = one_attr(&[f_varint(20, 3), f_len(4, b"forward")]).unwrap();
        assert_eq!(a.value, AttrValue::String(b"forward".to_vec()));
        let a = one_attr(&[
            f_varint(20, 7),
            f_varint(8, 1),
            packed_varints(8, &[2, -3]),
            f_varint(8, 4),
        ])
        .unwrap();
        assert_eq!(a.value, AttrValue::Ints(vec![1, 2, -3, 4]));
        let mut packed = Vec::new();
        packed.extend_from_slice(&1.0f32.to_le_bytes());
        packed.extend_from_slice(&2.0f32.to_le_bytes());
        let a = one_attr(&[
            f_varint(20, 6),
            f_len(7, &packed),
            f_fixed32(7, 3.0f32.to_bits()),
        ])
        .unwrap();
        assert_eq!(a.value, AttrValue::Floats(vec![1.0, 2.0, 3.0]));
        let a = one_attr(&[f_varint(20, 8), f_len(9, b"a"), f_len(9, b"\xff")]).unwrap();
        assert_eq!(a.value, AttrValue::Strings(vec![b"a".to_vec(), vec![0xff]]));
        // Empty list with its type.
        let a = one_attr(&[f_varint(20, 7)]).unwrap();
        assert_eq!(a.value, AttrValue::Ints(vec![]));
        // Graph attribute: not decoded.
        let a = one_attr(&[f_len(1, b"body"), f_varint(20, 5), f_len(6, b"\x0a\x00")]).unwrap();
        assert_eq!(a.value, AttrValue::Other);
        // Untyped: inferred from the single field present.
        let a = one_attr(&[f_varint(3, 5)]).unwrap();
        assert_eq!(a.value, AttrValue::Int(5));
        let a = one_attr(&[f_varint(3, 5), f_fixed32(2, 0)]).unwrap();
        assert_eq!(a.value, AttrValue::Other);
        // A tensor.
        let t = cat(&[f_varint(2, 7), f_varint(7, 42)]);
        let a = one_attr(&[f_len(1, b"value"), f_varint(20, 4), f_len(5, &t)]).unwrap();
        let AttrValue::Tensor(t) = a.value else {
            panic!()
        };
        assert_eq!(t.as_i64().unwrap(), [42]);
        // A broken tensor is reported with its path.
        let t = cat(&[f_varint(1, 2), f_varint(2, 7), f_varint(7, 42)]);
        let e = one_attr(&[f_len(1, b"value"), f_varint(20, 4), f_len(5, &t)])
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("(at graph.node[0].attribute[0].t)"), "{e}");
        // Type TENSOR without tensor.
        let e = one_attr(&[f_len(1, b"value"), f_varint(20, 4)])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("attribute `value`: has type TENSOR"), "{e}");
        // A non-selected tensor is not decoded (and so cannot fail).
        let a = one_attr(&[f_varint(20, 2), f_varint(3, 1), f_len(5, &t)]).unwrap();
        assert_eq!(a.value, AttrValue::Int(1));
    }

    #[test]
    fn invalid_utf8_names_are_errors() {
        let node = cat(&[f_len(4, b"\xc3")]);
        let e = err(&model(&[f_len(1, &node)]));
        assert!(
            e.contains("not valid UTF-8") && e.contains("NodeProto"),
            "{e}"
        );
    }

    #[test]
    fn value_info_shapes() {
        let dim_v = |v: u64| f_len(1, &f_varint(1, v));
        let dim_p = |p: &[u8]| f_len(1, &f_len(2, p));
        let shape = cat(&[dim_p(b"seq"), dim_v(1), f_len(1, b""), dim_v(4)]);
        let tensor_type = cat(&[f_varint(1, 1), f_len(2, &shape)]);
        let vi = cat(&[f_len(1, b"x"), f_len(2, &f_len(1, &tensor_type))]);
        let seq = cat(&[f_len(1, b"s"), f_len(2, &f_len(4, b""))]);
        let m = decode_model(&model(&[f_len(11, &vi), f_len(12, &seq)])).unwrap();
        let x = &m.graph.inputs[0];
        assert_eq!(x.name, "x");
        assert_eq!(x.elem_type, 1);
        assert_eq!(
            x.shape,
            [
                Dim::Param("seq".into()),
                Dim::Fixed(1),
                Dim::Unknown,
                Dim::Fixed(4)
            ]
        );
        assert_eq!(m.graph.outputs[0].elem_type, 0);
        assert!(m.graph.outputs[0].shape.is_empty());
    }

    #[test]
    fn nesting_depth_is_limited() {
        // The decoders never go deep, but the reader refuses to regardless.
        let mut f = Field {
            number: 1,
            value: Value::Len {
                bytes: b"",
                start: 0,
            },
            offset: 0,
            msg: "T",
            depth: MAX_DEPTH,
        };
        assert!(f.message("U").is_err());
        f.depth = MAX_DEPTH - 1;
        assert!(f.message("U").is_ok());
    }

    #[test]
    fn every_prefix_of_a_model_is_handled() {
        let node = cat(&[
            f_len(1, b"x"),
            f_len(2, b"y"),
            f_len(4, b"Gemm"),
            f_len(
                5,
                &cat(&[f_len(1, b"alpha"), f_varint(20, 1), f_fixed32(2, 0)]),
            ),
        ]);
        let t = cat(&[packed_varints(1, &[2]), f_varint(2, 1), f_len(9, &[0; 8])]);
        let bytes = model(&[f_len(1, &node), f_len(5, &t)]);
        assert!(decode_model(&bytes).is_ok());
        for n in 0..bytes.len() {
            // Only the full model has a complete graph field at the end.
            assert!(decode_model(&bytes[..n]).is_err(), "prefix {n}");
        }
    }
}
