//! Minimal, dependency-free reading of ONNX model files.
//!
//! An `.onnx` file is a serialized `ModelProto` (protobuf wire format, see
//! `onnx.proto`). This module decodes the part of it that is needed to import
//! recurrent models exported by `torch.onnx.export`: the graph's nodes with
//! their attributes, the initializers (dense tensors, decoded to typed
//! vectors), and the graph's inputs and outputs with their shapes.
//!
//! The decoder is written for untrusted input: it never panics, its work is
//! linear in the size of the file, it never allocates more than the file's
//! size justifies, and every error says what was wrong and where (the
//! protobuf message, the byte offset in the file and the path from the model
//! root, e.g. `graph.node[3].attribute[0]`).
//!
//! What is *not* decoded (skipped without error): documentation strings,
//! metadata, `value_info`, sparse initializers, sub-graphs (`If`/`Loop`/`Scan`
//! bodies, which appear as [`AttrValue::Other`]), local functions and training
//! information. Tensors whose data lives in an external file are refused.
//!
//! ```no_run
//! use seqrec::onnx::Model;
//! let model = Model::load("model.onnx")?;
//! for node in &model.graph.nodes {
//!     println!("{} {:?}", node.op_type, node.attr_int("hidden_size"));
//! }
//! # Ok::<(), seqrec::Error>(())
//! ```

use std::path::Path;

use crate::error::{Error, Result};

mod proto;

/// `TensorProto.DataType.FLOAT` (32-bit IEEE float).
pub const DATA_TYPE_FLOAT: i32 = 1;
/// `TensorProto.DataType.INT32`.
pub const DATA_TYPE_INT32: i32 = 6;
/// `TensorProto.DataType.INT64`.
pub const DATA_TYPE_INT64: i32 = 7;
/// `TensorProto.DataType.DOUBLE` (64-bit IEEE float).
pub const DATA_TYPE_DOUBLE: i32 = 11;

/// A decoded ONNX model (`ModelProto`).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The IR version the file was written with (`ModelProto.ir_version`), 0 if absent.
    pub ir_version: i64,
    /// The version of the default operator set (domain `""` or `"ai.onnx"`)
    /// the model imports, 0 if it imports none.
    pub opset: i64,
    /// The main graph.
    pub graph: Graph,
}

/// A computation graph (`GraphProto`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// The graph's name (may be empty).
    pub name: String,
    /// The nodes, in file order (ONNX requires topological order).
    pub nodes: Vec<Node>,
    /// The dense initializers (weights and constants), in file order.
    /// Sparse initializers are not decoded.
    pub initializers: Vec<Tensor>,
    /// The graph's inputs. Older exporters also list initializers here.
    pub inputs: Vec<ValueInfo>,
    /// The graph's outputs.
    pub outputs: Vec<ValueInfo>,
}

/// One operator application (`NodeProto`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Node {
    /// The node's name (may be empty).
    pub name: String,
    /// The operator, e.g. `"LSTM"`, `"Gemm"`, `"Constant"`.
    pub op_type: String,
    /// The operator's domain; empty for the default `ai.onnx` domain.
    pub domain: String,
    /// The names of the input values, in order. An empty name marks an
    /// omitted optional input.
    pub inputs: Vec<String>,
    /// The names of the output values, in order (empty = omitted optional output).
    pub outputs: Vec<String>,
    /// The node's attributes, in file order.
    pub attributes: Vec<Attribute>,
}

/// A named attribute of a node (`AttributeProto`).
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    /// The attribute's name, e.g. `"hidden_size"`.
    pub name: String,
    /// Its value.
    pub value: AttrValue,
}

/// The value of an attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A single float (`FLOAT`).
    Float(f32),
    /// A single integer (`INT`).
    Int(i64),
    /// A byte string (`STRING`); ONNX says UTF-8 but does not enforce it.
    String(Vec<u8>),
    /// A tensor (`TENSOR`), e.g. the `value` of a `Constant` node.
    Tensor(Tensor),
    /// A list of floats (`FLOATS`).
    Floats(Vec<f32>),
    /// A list of integers (`INTS`).
    Ints(Vec<i64>),
    /// A list of byte strings (`STRINGS`).
    Strings(Vec<Vec<u8>>),
    /// Any other kind (graph, list of tensors or graphs, sparse tensor, type
    /// proto, or an untyped attribute that could not be classified). Not decoded.
    Other,
}

/// A dense tensor (`TensorProto`) with its data decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// The tensor's name (initializers are referenced by it; may be empty
    /// for attribute tensors).
    pub name: String,
    /// The shape; empty for a scalar. All entries are non-negative and their
    /// product fits in `usize` (checked when decoding).
    pub dims: Vec<i64>,
    /// The element type, a `TensorProto.DataType` code (1 = FLOAT, 6 = INT32,
    /// 7 = INT64, 11 = DOUBLE, ...); see the `DATA_TYPE_*` constants.
    pub data_type: i32,
    /// The elements in row-major order.
    pub data: TensorData,
}

/// The decoded elements of a [`Tensor`].
///
/// For the supported types the number of elements always equals the product
/// of the dims (checked when decoding).
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    /// `FLOAT` elements.
    F32(Vec<f32>),
    /// `INT64` elements.
    I64(Vec<i64>),
    /// `INT32` elements.
    I32(Vec<i32>),
    /// `DOUBLE` elements.
    F64(Vec<f64>),
    /// Any other element type (its data is not decoded); the tensor's
    /// `data_type` says which, for error messages.
    Other,
}

/// The name, element type and shape of a graph input or output (`ValueInfoProto`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValueInfo {
    /// The value's name.
    pub name: String,
    /// The tensor element type (a `TensorProto.DataType` code); 0 when
    /// unknown or when the value is not a tensor (sequence, map, ...).
    pub elem_type: i32,
    /// The shape, one entry per axis. Empty when the value is a scalar *or*
    /// when the file gives no shape.
    pub shape: Vec<Dim>,
}

/// One axis of a [`ValueInfo`] shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size, e.g. `"seq"` or `"batch_size"`.
    Param(String),
    /// Neither a size nor a name is given.
    Unknown,
}

impl Model {
    /// Reads and decodes the ONNX model at `path`.
    ///
    /// Returns [`Error::Io`] if the file cannot be read and
    /// [`Error::InvalidModel`] if it is not a well-formed ONNX model.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Model::parse(&bytes, path)
    }

    /// Decodes a serialized `ModelProto`; `path` is only used in error messages.
    ///
    /// Returns [`Error::InvalidModel`] if `bytes` are not a well-formed ONNX model.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Model> {
        proto::decode_model(bytes).map_err(|e| Error::InvalidModel {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}

impl Graph {
    /// The first initializer called `name`, if any.
    pub fn initializer(&self, name: &str) -> Option<&Tensor> {
        self.initializers.iter().find(|t| t.name == name)
    }
}

impl Node {
    /// The value of the first attribute called `name`, if any.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.value)
    }

    /// The attribute `name` if it is an [`AttrValue::Int`].
    pub fn attr_int(&self, name: &str) -> Option<i64> {
        match self.attr(name)? {
            AttrValue::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The attribute `name` if it is an [`AttrValue::Float`].
    pub fn attr_float(&self, name: &str) -> Option<f32> {
        match self.attr(name)? {
            AttrValue::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// The attribute `name` if it is an [`AttrValue::Ints`].
    pub fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        match self.attr(name)? {
            AttrValue::Ints(v) => Some(v),
            _ => None,
        }
    }

    /// The attribute `name` if it is an [`AttrValue::Floats`].
    pub fn attr_floats(&self, name: &str) -> Option<&[f32]> {
        match self.attr(name)? {
            AttrValue::Floats(v) => Some(v),
            _ => None,
        }
    }

    /// The attribute `name` if it is an [`AttrValue::String`] holding valid UTF-8.
    pub fn attr_string(&self, name: &str) -> Option<&str> {
        match self.attr(name)? {
            AttrValue::String(v) => std::str::from_utf8(v).ok(),
            _ => None,
        }
    }

    /// The attribute `name` if it is an [`AttrValue::Strings`] whose entries
    /// are all valid UTF-8.
    pub fn attr_strings(&self, name: &str) -> Option<Vec<&str>> {
        match self.attr(name)? {
            AttrValue::Strings(v) => v.iter().map(|s| std::str::from_utf8(s).ok()).collect(),
            _ => None,
        }
    }

    /// The attribute `name` if it is an [`AttrValue::Tensor`].
    pub fn attr_tensor(&self, name: &str) -> Option<&Tensor> {
        match self.attr(name)? {
            AttrValue::Tensor(t) => Some(t),
            _ => None,
        }
    }
}

impl Tensor {
    /// The number of elements, the product of `dims` (1 for a scalar);
    /// `None` if a dim is negative or the product overflows `usize`.
    pub fn numel(&self) -> Option<usize> {
        numel(&self.dims)
    }

    /// The elements if the tensor is `FLOAT`.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements if the tensor is `INT64`.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            _ => None,
        }
    }

    /// The elements if the tensor is `INT32`.
    pub fn as_i32(&self) -> Option<&[i32]> {
        match &self.data {
            TensorData::I32(v) => Some(v),
            _ => None,
        }
    }

    /// The elements if the tensor is `DOUBLE`.
    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            TensorData::F64(v) => Some(v),
            _ => None,
        }
    }
}

/// The name of a `TensorProto.DataType` code, for messages (`"FLOAT"`, `"INT64"`, ...).
pub fn data_type_name(code: i32) -> &'static str {
    match code {
        0 => "UNDEFINED",
        1 => "FLOAT",
        2 => "UINT8",
        3 => "INT8",
        4 => "UINT16",
        5 => "INT16",
        6 => "INT32",
        7 => "INT64",
        8 => "STRING",
        9 => "BOOL",
        10 => "FLOAT16",
        11 => "DOUBLE",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        16 => "BFLOAT16",
        17 => "FLOAT8E4M3FN",
        18 => "FLOAT8E4M3FNUZ",
        19 => "FLOAT8E5M2",
        20 => "FLOAT8E5M2FNUZ",
        21 => "UINT4",
        22 => "INT4",
        23 => "FLOAT4E2M1",
        24 => "FLOAT8E8M0",
        25 => "UINT2",
        26 => "INT2",
        27 => "FLOAT6E2M3",
        28 => "FLOAT6E3M2",
        _ => "unknown data type",
    }
}

/// Product of `dims` as `usize`; `None` for a negative dim or on overflow.
fn numel(dims: &[i64]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| {
        let d = usize::try_from(d).ok()?;
        acc.checked_mul(d)
    })
}
