//! A pickle reader for exactly what a pickled tuple of NumPy arrays needs, and nothing more.
//!
//! `mnist.pkl.gz` is a Python-2, protocol-2 pickle made by `cPickle.dump` of
//! `((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`. Each array is stored as
//! `numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')` followed by a `BUILD` whose
//! state is `(1, shape, dtype, is_fortran, raw_bytes)`, and each dtype as
//! `numpy.dtype('f4', False, True)` followed by a `BUILD` with its byte order.
//!
//! Why not `serde-pickle` alone: it has no notion of NumPy's globals, so at best it hands back
//! the `BUILD` state with the globals replaced by placeholders, and a dtype that the pickle
//! memoized before its `BUILD` comes back as a placeholder on every later reference — the
//! element type of those arrays cannot be checked. NumPy's own format needs object identity
//! (a `BUILD` mutates the object the memo points at), which is what this small machine models.
//!
//! What it reads: protocols 2–5 as written by Python 2 and 3 for this tuple — `BINSTRING`
//! (Python 2), `BINBYTES*`, `_codecs.encode(str, 'latin1')` (Python 3 writing protocol 2),
//! NumPy ≥ 2's `numpy._core` module names, and protocol 5's in-band `PickleBuffer`
//! (`numpy._core.numeric._frombuffer` with `BYTEARRAY8`).
//!
//! What it leaves out, on purpose: lists, dicts, object arrays, out-of-band buffers, and every
//! global other than the five NumPy/codecs callables named in [`Global`]. Nothing in the input
//! is ever executed; an unknown opcode or global is an error. Every length read from the input
//! is checked against the bytes that remain before it is used, and byte payloads are borrowed
//! from the input rather than copied.
//!
//! [`first_array_shape`] runs the same machine only as far as the first array's shape, so that
//! the number of training images can be learnt from a file's first bytes.
//!
//! Memory stays bounded by the input: a memoised value fetched again (`GET`) is shared, not
//! copied; the stack and marks together hold at most [`MAX_STACK`] entries and the memo
//! [`MAX_MEMO`]; tuples nest at most 32 deep. Text quoted from the input in an error is cut
//! and escaped ([`super::quote`]).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Why a pickle could not be read, and the byte offset (in the decompressed stream) where.
#[derive(Debug, thiserror::Error)]
#[error("pickle byte {offset}: {message}")]
pub struct PickleError {
    pub offset: usize,
    pub message: String,
    /// The input ended before the pickle did (more input might complete it).
    truncated: bool,
}

impl PickleError {
    /// True when the input ended before the pickle's `STOP`: a longer input might be read.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

/// The most entries the stack and the marks may hold together (reading the MNIST tuple needs
/// fewer than 20): 100 million pushes of `None` would otherwise hold gigabytes.
pub const MAX_STACK: usize = 1 << 16;
/// The most values the memo may hold (the MNIST tuple memoises fewer than 100).
pub const MAX_MEMO: usize = 1 << 16;

/// The element types a NumPy array in this format may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementType {
    F32,
    F64,
    I64,
    I32,
    U8,
}

impl ElementType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            ElementType::F32 | ElementType::I32 => 4,
            ElementType::F64 | ElementType::I64 => 8,
            ElementType::U8 => 1,
        }
    }

    fn from_numpy(code: &str) -> Option<Self> {
        Some(match code {
            "f4" => ElementType::F32,
            "f8" => ElementType::F64,
            "i8" => ElementType::I64,
            "i4" => ElementType::I32,
            "u1" => ElementType::U8,
            _ => return None,
        })
    }
}

/// A NumPy dtype: element type and byte order (`true` = big-endian).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dtype {
    pub element: ElementType,
    pub big_endian: bool,
}

/// A NumPy array as the pickle describes it; `data` is the raw buffer in `order`.
#[derive(Clone, Debug)]
pub struct NdArray<'a> {
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub fortran_order: bool,
    pub data: Bytes<'a>,
}

/// A byte string: borrowed from the input, or made while reading it (`_codecs.encode`), and
/// shared by every value that refers to it.
pub type Bytes<'a> = Rc<Cow<'a, [u8]>>;

impl NdArray<'_> {
    /// Number of elements (the product of the shape; checked when the array was built).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The only callables a pickle may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Global {
    /// `numpy.core.multiarray._reconstruct` (or `numpy._core…`)
    Reconstruct,
    /// `numpy.ndarray`
    NdArrayType,
    /// `numpy.dtype`
    Dtype,
    /// `_codecs.encode`, used by Python 3 to write `bytes` under protocol 2
    CodecsEncode,
    /// `numpy.core.numeric._frombuffer`, used with protocol 5
    FromBuffer,
    /// `builtins.bytes` / `__builtin__.bytes`, which protocol 2 uses for `b''`
    Bytes,
}

impl Global {
    fn resolve(module: &str, name: &str) -> Option<Self> {
        Some(match (module, name) {
            ("numpy.core.multiarray" | "numpy._core.multiarray", "_reconstruct") => {
                Global::Reconstruct
            }
            ("numpy", "ndarray") => Global::NdArrayType,
            ("numpy", "dtype") => Global::Dtype,
            ("_codecs", "encode") => Global::CodecsEncode,
            ("numpy.core.numeric" | "numpy._core.numeric", "_frombuffer") => Global::FromBuffer,
            ("builtins" | "__builtin__", "bytes") => Global::Bytes,
            _ => return None,
        })
    }
}

/// The deepest tuple nesting accepted (the MNIST tuple is 3 deep); bounds recursion on drop.
const MAX_DEPTH: u8 = 32;

/// A value on the pickle machine's stack. Objects that `BUILD` mutates (arrays, dtypes) are
/// shared, so that the memo sees the mutation as Python's would.
#[derive(Clone, Debug)]
pub enum Value<'a> {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Bytes(Bytes<'a>),
    Tuple(Rc<Tuple<'a>>),
    Global(Global),
    Dtype(Rc<RefCell<Dtype>>),
    /// An array; `None` until its `BUILD` has run.
    Array(Rc<RefCell<Option<NdArray<'a>>>>),
}

#[derive(Debug)]
pub struct Tuple<'a> {
    pub items: Vec<Value<'a>>,
    depth: u8,
}

impl<'a> Value<'a> {
    fn depth(&self) -> u8 {
        match self {
            Value::Tuple(t) => t.depth,
            _ => 0,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::Global(_) => "global",
            Value::Dtype(_) => "dtype",
            Value::Array(_) => "ndarray",
        }
    }

    /// Text, from a `str` or (as Python 2 writes short strings) ASCII bytes.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Bytes(b) if b.is_ascii() => std::str::from_utf8(b.as_ref()).ok(),
            _ => None,
        }
    }

    /// The items, if this is a tuple.
    pub fn as_tuple(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::Tuple(t) => Some(&t.items),
            _ => None,
        }
    }

    /// The array, if this is a fully built array. Moves the buffer out when this is the
    /// array's last reference, which is the usual case for the MNIST tuple.
    pub fn into_array(self) -> Option<NdArray<'a>> {
        match self {
            Value::Array(cell) => match Rc::try_unwrap(cell) {
                Ok(inner) => inner.into_inner(),
                Err(shared) => shared.borrow().clone(),
            },
            _ => None,
        }
    }
}

/// Reads one pickle from `input` and returns the value `STOP` finds on the stack.
pub fn read(input: &[u8]) -> Result<Value<'_>, PickleError> {
    Machine::new(input, false).run()
}

/// The shape of the first array a pickle holds, from as little of it as tells: `input` may be
/// only the pickle's first bytes. An array's state — `(1, shape, dtype, is_fortran, raw
/// bytes)` — holds its shape before its bytes, so reading stops where the first array's bytes
/// begin, once their length has been found to be the one that shape and dtype need; an array
/// wholly in `input` is read to its end. Everything up to there is read and checked as
/// [`read`] reads it.
///
/// `None` when `input` ends, or the pickle breaks a rule, before the shape is known — among
/// them the layouts that hold an array's bytes in another form or before its shape: Python 3's
/// protocol 2 (`_codecs.encode` of text) and protocol 5 (`_frombuffer`), unless the whole
/// array is in `input`. For the MNIST tuple the first array is the training images, and the
/// book's `mnist.pkl.gz` reaches their bytes within its first 200 bytes.
pub fn first_array_shape(input: &[u8]) -> Option<Vec<usize>> {
    let mut machine = Machine::new(input, true);
    let _ = machine.run();
    machine.first_shape
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    stack: Vec<Value<'a>>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value<'a>>,
    /// Stop at the first array's shape ([`first_array_shape`]) rather than at `STOP`.
    peek: bool,
    /// The first array's shape, once known (only looked for when `peek`).
    first_shape: Option<Vec<usize>>,
}

impl<'a> Machine<'a> {
    fn new(input: &'a [u8], peek: bool) -> Self {
        Machine {
            input,
            pos: 0,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
            peek,
            first_shape: None,
        }
    }

    fn error<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError {
            offset: self.pos,
            message: message.into(),
            truncated: false,
        })
    }

    /// The input ended before the pickle did.
    fn truncated<T>(&self, message: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError {
            offset: self.pos,
            message: format!("truncated: {}", message.into()),
            truncated: true,
        })
    }

    /// Pushes `v`, unless the stack and marks are full.
    fn push(&mut self, v: Value<'a>) -> Result<(), PickleError> {
        self.room()?;
        self.stack.push(v);
        Ok(())
    }

    fn room(&self) -> Result<(), PickleError> {
        if self.stack.len() + self.marks.len() >= MAX_STACK {
            return self.error(format!(
                "more than {MAX_STACK} values on the stack (a pickled NumPy array needs a few)"
            ));
        }
        Ok(())
    }

    /// Takes `n` bytes, failing (before anything is allocated) if fewer remain.
    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let remaining = self.input.len() - self.pos;
        if n > remaining {
            return self.truncated(format!(
                "a field needs {n} bytes but only {remaining} remain"
            ));
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take_array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, PickleError> {
        Ok(u32::from_le_bytes(self.take_array()?))
    }

    /// A length prefix of `width` bytes; `take` then checks it against what remains.
    fn length(&mut self, width: usize) -> Result<usize, PickleError> {
        let value = match width {
            1 => u64::from(self.u8()?),
            4 => u64::from(self.u32()?),
            _ => u64::from_le_bytes(self.take_array()?),
        };
        match usize::try_from(value) {
            Ok(n) => Ok(n),
            Err(_) => self.error(format!("length {value} does not fit in memory")),
        }
    }

    fn line(&mut self) -> Result<&'a str, PickleError> {
        let rest = &self.input[self.pos..];
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            return self.truncated("unterminated text line");
        };
        let line = self.take(end + 1)?;
        match std::str::from_utf8(&line[..end]) {
            Ok(s) => Ok(s),
            Err(_) => self.error("text line is not UTF-8"),
        }
    }

    fn utf8(&mut self, n: usize) -> Result<Value<'a>, PickleError> {
        let bytes = self.take(n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Str(Cow::Borrowed(s))),
            Err(_) => self.error("string is not UTF-8"),
        }
    }

    fn pop(&mut self) -> Result<Value<'a>, PickleError> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return self.error("stack underflow (reached a mark)");
        }
        match self.stack.pop() {
            Some(v) => Ok(v),
            None => self.error("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Value<'a>>, PickleError> {
        match self.marks.pop() {
            Some(m) => Ok(self.stack.split_off(m)),
            None => self.error("no mark on the stack"),
        }
    }

    fn tuple(&self, items: Vec<Value<'a>>) -> Result<Value<'a>, PickleError> {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        if depth > MAX_DEPTH {
            return self.error(format!("tuples nested deeper than {MAX_DEPTH}"));
        }
        Ok(Value::Tuple(Rc::new(Tuple { items, depth })))
    }

    fn push_tuple(&mut self, n: usize) -> Result<(), PickleError> {
        if self.stack.len() < n || self.marks.last().is_some_and(|&m| m > self.stack.len() - n) {
            return self.error("stack underflow building a tuple");
        }
        let items = self.stack.split_off(self.stack.len() - n);
        let t = self.tuple(items)?;
        self.push(t)?;
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        if self.memo.len() >= MAX_MEMO && !self.memo.contains_key(&key) {
            return self.error(format!(
                "more than {MAX_MEMO} memoised values (a pickled NumPy array needs a few)"
            ));
        }
        match self.stack.last() {
            Some(v) => {
                self.memo.insert(key, v.clone());
                Ok(())
            }
            None => self.error("memoize with an empty stack"),
        }
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            // Shared, not copied: a value is only ever mutated through its `Rc`.
            Some(v) => {
                let v = v.clone();
                self.push(v)
            }
            None => self.error(format!("memo key {key} was never stored")),
        }
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        match Global::resolve(module, name) {
            Some(g) => self.push(Value::Global(g)),
            None => self.error(format!(
                "refusing global {}: only NumPy array globals are read",
                super::quote(&format!("{module}.{name}"))
            )),
        }
    }

    /// Runs the pickle to its `STOP` and returns the value on the stack; when peeking, stops
    /// as soon as the first array's shape is known (and returns `None` then).
    fn run(&mut self) -> Result<Value<'a>, PickleError> {
        loop {
            if self.first_shape.is_some() {
                return Ok(Value::None);
            }
            let op = match self.u8() {
                Ok(op) => op,
                Err(_) => return self.truncated("the pickle ends before STOP"),
            };
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if !(2..=5).contains(&proto) {
                        return self.error(format!("pickle protocol {proto} is not supported"));
                    }
                }
                0x95 => {
                    // FRAME: a length hint for buffered readers; the data follows inline.
                    self.take(8)?;
                }
                b'.' => {
                    let v = self.pop()?;
                    if !self.stack.is_empty() || !self.marks.is_empty() {
                        return self.error("STOP with more than one value on the stack");
                    }
                    return Ok(v);
                }
                b'(' => {
                    self.room()?;
                    self.marks.push(self.stack.len());
                }
                b')' => {
                    let t = self.tuple(Vec::new())?;
                    self.push(t)?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    let t = self.tuple(items)?;
                    self.push(t)?;
                }
                0x85 => self.push_tuple(1)?,
                0x86 => self.push_tuple(2)?,
                0x87 => self.push_tuple(3)?,
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.take_array()?);
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(i64::from(v)))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.take_array()?);
                    self.push(Value::Int(i64::from(v)))?;
                }
                0x8a => {
                    // LONG1: little-endian two's complement, at most 8 bytes accepted.
                    let n = self.length(1)?;
                    if n > 8 {
                        return self.error(format!("integer of {n} bytes is too large"));
                    }
                    let bytes = self.take(n)?;
                    let mut buf = [0u8; 8];
                    buf[..n].copy_from_slice(bytes);
                    if n > 0 && bytes[n - 1] & 0x80 != 0 {
                        buf[n..].fill(0xff);
                    }
                    self.push(Value::Int(i64::from_le_bytes(buf)))?;
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take_array()?);
                    self.push(Value::Float(v))?;
                }
                b'T' | b'U' | b'B' | b'C' | 0x8e | 0x96 => {
                    // BINSTRING (a Python-2 byte string), SHORT_BINSTRING, BINBYTES,
                    // SHORT_BINBYTES, BINBYTES8, BYTEARRAY8: all raw bytes to us.
                    let width = match op {
                        b'U' | b'C' => 1,
                        b'T' | b'B' => 4,
                        _ => 8,
                    };
                    let n = self.length(width)?;
                    if self.peek {
                        self.first_shape = self.shape_before_bytes(n);
                        if self.first_shape.is_some() {
                            continue;
                        }
                    }
                    let bytes = self.take(n)?;
                    self.push(Value::Bytes(Rc::new(Cow::Borrowed(bytes))))?;
                }
                b'X' | 0x8c | 0x8d => {
                    let width = match op {
                        0x8c => 1,
                        b'X' => 4,
                        _ => 8,
                    };
                    let n = self.length(width)?;
                    let s = self.utf8(n)?;
                    self.push(s)?;
                }
                0x97 => return self.error("out-of-band buffers are not supported"),
                0x98 => {
                    // READONLY_BUFFER: marks the buffer on top read-only; nothing to do.
                    if self.stack.is_empty() {
                        return self.error("READONLY_BUFFER with an empty stack");
                    }
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(m), Value::Str(n)) => self.global(&m, &n)?,
                        _ => return self.error("STACK_GLOBAL needs two strings"),
                    }
                }
                b'q' => {
                    let k = self.u8()?;
                    self.memo_put(u32::from(k))?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()?;
                    self.memo_get(u32::from(k))?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b'0' => {
                    self.pop()?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let v = self.reduce(callable, args)?;
                    if self.peek {
                        self.first_shape = built_shape(&v);
                    }
                    self.push(v)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let Some(target) = self.stack.last().cloned() else {
                        return self.error("BUILD with an empty stack");
                    };
                    self.build(target.clone(), state)?;
                    if self.peek {
                        self.first_shape = built_shape(&target);
                    }
                }
                _ => {
                    return self.error(format!(
                        "opcode 0x{op:02x} is not one a pickled NumPy array uses"
                    ))
                }
            }
        }
    }

    /// When peeking and a byte string of `n` bytes is next: the shape of the first array, if
    /// this string is its raw bytes. That is so when the stack is the first array's `BUILD`
    /// state but its last item — `_reconstruct`'s empty array alone below one mark, then `1`,
    /// the shape, the dtype and the order flag — and `n` is the bytes that shape and dtype
    /// need.
    fn shape_before_bytes(&self, n: usize) -> Option<Vec<usize>> {
        if self.marks[..] != [1] {
            return None;
        }
        let [Value::Array(array), Value::Int(1), shape, Value::Dtype(dtype), order] =
            &self.stack[..]
        else {
            return None;
        };
        if array.borrow().is_some() || !matches!(order, Value::Bool(_) | Value::Int(_)) {
            return None;
        }
        let shape = shape
            .as_tuple()?
            .iter()
            .map(|d| match d {
                Value::Int(d) => usize::try_from(*d).ok(),
                _ => None,
            })
            .collect::<Option<Vec<usize>>>()?;
        let bytes = shape
            .iter()
            .try_fold(dtype.borrow().element.size(), |b, &d| b.checked_mul(d))?;
        (bytes == n).then_some(shape)
    }

    fn reduce(&self, callable: Value<'a>, args: Value<'a>) -> Result<Value<'a>, PickleError> {
        let Value::Global(g) = callable else {
            return self.error(format!(
                "REDUCE on a {}, not a global",
                callable.type_name()
            ));
        };
        let Some(args) = args.as_tuple() else {
            return self.error("REDUCE arguments are not a tuple");
        };
        match (g, args) {
            (Global::Reconstruct, [Value::Global(Global::NdArrayType), ..]) => {
                Ok(Value::Array(Rc::new(RefCell::new(None))))
            }
            (Global::Dtype, [code, ..]) => match code.as_text().and_then(parse_dtype_code) {
                Some(dtype) => Ok(Value::Dtype(Rc::new(RefCell::new(dtype)))),
                None => self.error(format!(
                    "dtype \"{}\" is not one of f4, f8, i8, i4, u1",
                    super::quote(code.as_text().unwrap_or(code.type_name()))
                )),
            },
            (Global::CodecsEncode, [Value::Str(text), Value::Str(codec)])
                if codec == "latin1" || codec == "latin-1" =>
            {
                let mut bytes = Vec::with_capacity(text.len());
                for ch in text.chars() {
                    match u8::try_from(u32::from(ch)) {
                        Ok(b) => bytes.push(b),
                        Err(_) => return self.error("latin-1 text has a character above 0xff"),
                    }
                }
                Ok(Value::Bytes(Rc::new(Cow::Owned(bytes))))
            }
            (Global::Bytes, []) => Ok(Value::Bytes(Rc::new(Cow::Borrowed(&[])))),
            (Global::FromBuffer, [Value::Bytes(data), Value::Dtype(dtype), shape, order]) => {
                let fortran_order = match order.as_text() {
                    Some("C") => false,
                    Some("F") => true,
                    _ => return self.error("array order is not 'C' or 'F'"),
                };
                let dtype = *dtype.borrow();
                let array = self.check_array(shape, dtype, fortran_order, data.clone())?;
                Ok(Value::Array(Rc::new(RefCell::new(Some(array)))))
            }
            _ => self.error(format!("unexpected arguments for {g:?}")),
        }
    }

    fn build(&self, target: Value<'a>, state: Value<'a>) -> Result<(), PickleError> {
        let Some(items) = state.as_tuple() else {
            return self.error("BUILD state is not a tuple");
        };
        match target {
            Value::Array(cell) => {
                // (version, shape, dtype, is_fortran, raw data)
                let [Value::Int(1), shape, Value::Dtype(dtype), fortran, Value::Bytes(data)] =
                    items
                else {
                    return self.error(
                        "array state is not (1, shape, dtype, is_fortran, raw bytes) \
                         (object arrays are not supported)",
                    );
                };
                let fortran_order = match fortran {
                    Value::Bool(b) => *b,
                    Value::Int(i) => *i != 0,
                    _ => return self.error("array is_fortran flag is not a bool"),
                };
                let dtype = *dtype.borrow();
                let array = self.check_array(shape, dtype, fortran_order, data.clone())?;
                *cell.borrow_mut() = Some(array);
                Ok(())
            }
            Value::Dtype(cell) => {
                // (version, byteorder, subarray, names, fields, elsize, alignment, flags[, metadata])
                match items.get(1).and_then(Value::as_text) {
                    Some(order) => {
                        let big_endian = match order {
                            ">" => true,
                            "<" | "|" | "=" => false,
                            other => {
                                return self
                                    .error(format!("dtype byte order \"{}\"", super::quote(other)))
                            }
                        };
                        if items.get(3).is_some_and(|v| !matches!(v, Value::None)) {
                            return self.error("structured dtypes are not supported");
                        }
                        cell.borrow_mut().big_endian = big_endian;
                        Ok(())
                    }
                    None => self.error("dtype state has no byte order"),
                }
            }
            other => self.error(format!("BUILD on a {}", other.type_name())),
        }
    }

    /// Checks shape × element size against the bytes actually present.
    fn check_array(
        &self,
        shape: &Value<'a>,
        dtype: Dtype,
        fortran_order: bool,
        data: Bytes<'a>,
    ) -> Result<NdArray<'a>, PickleError> {
        let Some(dims) = shape.as_tuple() else {
            return self.error("array shape is not a tuple");
        };
        let mut shape = Vec::with_capacity(dims.len());
        let mut bytes = Some(dtype.element.size());
        for d in dims {
            let Value::Int(n) = d else {
                return self.error("array shape has a non-integer");
            };
            let Ok(n) = usize::try_from(*n) else {
                return self.error(format!("array shape has a negative dimension {n}"));
            };
            bytes = bytes.and_then(|b| b.checked_mul(n));
            shape.push(n);
        }
        if bytes != Some(data.len()) {
            return self.error(format!(
                "array of shape {} and {:?} needs {} bytes but {} are stored",
                super::quote(&format!("{shape:?}")),
                dtype.element,
                bytes.map_or_else(|| "more than addressable".to_string(), |b| b.to_string()),
                data.len()
            ));
        }
        Ok(NdArray {
            shape,
            dtype,
            fortran_order,
            data,
        })
    }
}

/// The shape of `v` if it is an array whose data has been read.
fn built_shape(v: &Value) -> Option<Vec<usize>> {
    match v {
        Value::Array(cell) => cell.borrow().as_ref().map(|a| a.shape.clone()),
        _ => None,
    }
}

/// `numpy.dtype`'s first argument: `"f4"`, `"<f8"`, `"i8"`, …
fn parse_dtype_code(code: &str) -> Option<Dtype> {
    let (big_endian, rest) = match code.as_bytes().first()? {
        b'>' => (true, &code[1..]),
        b'<' | b'=' | b'|' => (false, &code[1..]),
        _ => (false, code),
    };
    Some(Dtype {
        element: ElementType::from_numpy(rest)?,
        big_endian,
    })
}
