//! Errors in files a person wrote (the config, the policy), and finding the line of a field in
//! TOML source. Control plane only.

use std::fmt;

/// An error a person can act on: the file, the line, the field, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The field, e.g. `rings.capacity.low` or `agents[3].role`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.field.as_str()) {
            (Some(l), "-") => write!(f, "{}:{}: {}", self.file, l, self.message),
            (None, "-") => write!(f, "{}: {}", self.file, self.message),
            (Some(l), field) => write!(f, "{}:{}: `{}`: {}", self.file, l, field, self.message),
            (None, field) => write!(f, "{}: `{}`: {}", self.file, field, self.message),
        }
    }
}
impl std::error::Error for SourceError {}

/// Most bytes warden reads of each kind of file a person writes; a longer file is refused while
/// it is read, before it costs memory.
pub mod limits {
    /// The config file.
    pub const CONFIG_BYTES: u64 = 1 << 20;
    /// A policy file (thousands of agents and tools).
    pub const POLICY_BYTES: u64 = 64 << 20;
    /// A threat-pattern catalogue.
    pub const CATALOGUE_BYTES: u64 = 16 << 20;
    /// A threat model's weights.
    pub const MODEL_BYTES: u64 = 256 << 20;
    /// A PIN or keystore file.
    pub const SECRET_BYTES: u64 = 64 << 10;
}

/// Reads at most `max` bytes of `path`; more is an error that says so. `what` names the file in
/// errors ("the config file").
pub fn read_bounded(path: &std::path::Path, max: u64, what: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |e: std::io::Error| format!("cannot read {what} {}: {e}", path.display());
    // Opened without blocking and required to be a regular file: a FIFO or a device named
    // where a file belongs is refused at once, not waited on or read forever.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(cannot)?;
    if !f.metadata().map_err(cannot)?.is_file() {
        return Err(format!(
            "{what} {} is not a regular file (a directory, FIFO or device); give a file",
            path.display()
        ));
    }
    let mut b = Vec::new();
    f.take(max + 1).read_to_end(&mut b).map_err(cannot)?;
    if b.len() as u64 > max {
        return Err(format!(
            "{what} {} is larger than {max} bytes, more than warden reads of one",
            path.display()
        ));
    }
    Ok(b)
}

/// `read_bounded` as UTF-8 text.
pub fn read_text_bounded(path: &std::path::Path, max: u64, what: &str) -> Result<String, String> {
    String::from_utf8(read_bounded(path, max, what)?)
        .map_err(|e| format!("{what} {} is not UTF-8: {e}", path.display()))
}

/// Turns a TOML syntax or type error into a `SourceError`: the line from its span, the field
/// from "unknown field `x`" or from the key written on that line.
pub fn from_toml_error(e: &toml::de::Error, src: &str, file: &str) -> SourceError {
    let off = e.span().map(|s| s.start);
    let msg = e.message().to_string();
    let field = if let Some(rest) = msg.strip_prefix("unknown field `") {
        rest.split('`').next().unwrap_or("-").to_string()
    } else if let Some(off) = off {
        let start = src[..off.min(src.len())].rfind('\n').map_or(0, |i| i + 1);
        let line = src[start..].lines().next().unwrap_or("");
        match line.find('=') {
            Some(eq) => line[..eq].trim().to_string(),
            None => line.trim().trim_matches(['[', ']']).to_string(),
        }
    } else {
        String::new()
    };
    // A field name comes from a line of the file: keep an error readable whatever the line.
    let field: String = if field.chars().count() > 64 {
        field.chars().take(60).chain("...".chars()).collect()
    } else {
        field
    };
    // A syntax error may sit where no key is written yet (`[` at the end of a file).
    let field = if field.is_empty() {
        "(syntax)".to_string()
    } else {
        field
    };
    SourceError {
        file: file.into(),
        line: off.map(|o| Lines::new(src).line(o)),
        field,
        message: msg,
    }
}

/// The line of a dotted field (`a.b.c`) in TOML source, if it is written there.
pub(crate) fn line_of_dotted(src: &str, dotted: &str) -> Option<usize> {
    let doc = src.parse::<toml_edit::ImDocument<String>>().ok()?;
    let path: Vec<Seg> = dotted.split('.').map(|k| Seg::Key(k.to_string())).collect();
    line_of(&Lines::new(src), &doc, &path)
}

#[derive(Clone, Debug)]
pub(crate) enum Seg {
    K(&'static str),
    Key(String),
    I(usize),
}

pub(crate) fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for p in path {
        match p {
            Seg::K(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::I(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Where the lines of a source text start, found once, so the line of any offset is a binary
/// search (a file with thousands of errors is reported in time linear in its size).
pub(crate) struct Lines(Vec<usize>);

impl Lines {
    pub(crate) fn new(src: &str) -> Lines {
        Lines(memchr::memchr_iter(b'\n', src.as_bytes()).collect())
    }
    /// The 1-based line of byte offset `off`.
    pub(crate) fn line(&self, off: usize) -> usize {
        self.0.partition_point(|&nl| nl < off) + 1
    }
}

pub(crate) fn line_of(
    lines: &Lines,
    doc: &toml_edit::ImDocument<String>,
    path: &[Seg],
) -> Option<usize> {
    use toml_edit::{Item, Table, Value};
    #[derive(Clone, Copy)]
    enum Node<'a> {
        Item(&'a Item),
        Table(&'a Table),
        Value(&'a Value),
    }
    impl Node<'_> {
        fn span(self) -> Option<std::ops::Range<usize>> {
            match self {
                Node::Item(i) => i.span(),
                Node::Table(t) => t.span(),
                Node::Value(v) => v.span(),
            }
        }
    }
    let mut node = Node::Item(doc.as_item());
    let mut span = None;
    for seg in path {
        let key = match seg {
            Seg::K(k) => Some(*k),
            Seg::Key(k) => Some(k.as_str()),
            Seg::I(_) => None,
        };
        let next = match (node, key, seg) {
            (Node::Item(Item::Table(t)) | Node::Table(t), Some(k), _) => t.get(k).map(Node::Item),
            (Node::Item(Item::ArrayOfTables(a)), None, Seg::I(i)) => a.get(*i).map(Node::Table),
            (Node::Item(Item::Value(v)) | Node::Value(v), Some(k), _) => {
                v.as_inline_table().and_then(|t| t.get(k)).map(Node::Value)
            }
            (Node::Item(Item::Value(v)) | Node::Value(v), None, Seg::I(i)) => {
                v.as_array().and_then(|a| a.get(*i)).map(Node::Value)
            }
            _ => None,
        };
        match next {
            Some(n) => {
                span = n.span().or(span);
                node = n;
            }
            None => break,
        }
    }
    span.map(|s| lines.line(s.start))
}

/// Deserializers of tables whose every key is optional (`capacity = { critical = 2048 }`), the
/// keys left out taking the defaults of the table's default value.
macro_rules! partial_tables {
    ($ty:ident $fields:tt: $($name:ident = $default:expr;)*) => {
        $($crate::source::partial_table!($name, $ty $fields, $default);)*
    };
}

macro_rules! partial_table {
    ($name:ident, $ty:ident { $($f:ident),* }, $default:expr) => {
        fn $name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Partial {
                $($f: Option<u64>,)*
            }
            let p = Partial::deserialize(d)?;
            let def: $ty = $default;
            Ok($ty { $($f: p.$f.unwrap_or(def.$f),)* })
        }
    };
}

pub(crate) use {partial_table, partial_tables};
