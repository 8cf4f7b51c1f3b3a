//! The YAML parser's own events, one at a time: what `yaml::document` bounds a document by
//! before serde reads it.
//!
//! serde_yaml (`yaml_serde`) reads a whole document into a list of events first and expands every
//! alias again each time serde walks through it; neither its events nor its anchors are public.
//! So this module drives the same parser it uses, `libyaml-rs`, directly: the same tokens, the
//! same positions, the same errors, but one event alive at a time, so that reading a document
//! here costs no memory beyond its nesting. The parser's interface is C's, translated to Rust;
//! the unsafe code is confined to [`Parser`], which owns the parser state and frees each event
//! before it returns the next.

use std::mem::MaybeUninit;

use libyaml_rs as sys;

/// Where an event starts: 0-based, as the parser counts (`column` in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub line: usize,
    pub column: usize,
}

impl Mark {
    /// 1-based line and column, as serde_yaml reports positions.
    pub(crate) fn position(self) -> (usize, usize) {
        (self.line + 1, self.column + 1)
    }
}

/// What a node event carries that the bounds look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    /// `&name` on it.
    pub anchor: Option<Vec<u8>>,
    /// A tag written on it (`!foo`, `!!str`), as the parser resolved it.
    pub tag: Option<Vec<u8>>,
}

/// One event of the parser, reduced to what the bounds need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// A document starts (`---`, or the first content).
    DocumentStart,
    /// A scalar of `len` bytes.
    Scalar { node: Node, len: usize },
    /// A sequence or mapping starts.
    CollectionStart { node: Node },
    /// The innermost open sequence or mapping ends.
    CollectionEnd,
    /// `*name`.
    Alias { name: Vec<u8> },
    /// The stream's start, a document's end.
    Other,
    /// The stream ended.
    End,
    /// The parser stopped at a syntax error; serde_yaml will report the same one.
    Error,
}

/// libyaml's parser over a text, which it borrows for its whole life.
pub(crate) struct Parser<'text> {
    /// Boxed so that it never moves: libyaml keeps a pointer to it for its input handler.
    sys: Box<MaybeUninit<sys::yaml_parser_t>>,
    _text: std::marker::PhantomData<&'text str>,
    done: bool,
}

impl<'text> Parser<'text> {
    /// A parser of `text`, read as UTF-8.
    #[allow(unsafe_code)]
    pub(crate) fn new(text: &'text str) -> Parser<'text> {
        let mut parser =
            Parser { sys: Box::new(MaybeUninit::uninit()), _text: std::marker::PhantomData, done: false };
        let raw = parser.sys.as_mut_ptr();
        // SAFETY: `raw` points to memory owned by the box, which lives (and stays put) as long as
        // the parser. yaml_parser_initialize zeroes all of it and allocates its buffers through
        // Rust's allocator (which aborts rather than fail), so it always succeeds. The input
        // pointer and length describe `text`, which the lifetime `'text` keeps alive and
        // unchanged while the parser exists.
        unsafe {
            let _ = sys::yaml_parser_initialize(raw);
            sys::yaml_parser_set_encoding(raw, sys::YAML_UTF8_ENCODING);
            sys::yaml_parser_set_input_string(raw, text.as_ptr(), text.len() as u64);
        }
        parser
    }

    /// The next event and where it starts.
    #[allow(unsafe_code)]
    pub(crate) fn next_event(&mut self) -> (Event, Mark) {
        let zero = Mark { line: 0, column: 0 };
        if self.done {
            return (Event::End, zero);
        }
        let raw = self.sys.as_mut_ptr();
        let mut event = MaybeUninit::<sys::yaml_event_t>::uninit();
        // SAFETY: the parser was initialised in `new` and is only used from here, one call at a
        // time (`&mut self`). yaml_parser_parse writes a whole event (zeroed first) or fails, in
        // which case the event holds nothing to free. A successful event's pointers (anchor, tag,
        // value) are valid C strings (value: `length` bytes) until yaml_event_delete, which runs
        // before this function returns and after everything was copied out.
        unsafe {
            if (&(*raw)).error != sys::YAML_NO_ERROR || sys::yaml_parser_parse(raw, event.as_mut_ptr()).fail {
                self.done = true;
                let mark = (&(*raw)).problem_mark;
                return (Event::Error, Mark { line: mark.line as usize, column: mark.column as usize });
            }
            let event = event.assume_init_mut();
            let mark =
                Mark { line: event.start_mark.line as usize, column: event.start_mark.column as usize };
            let converted = match event.type_ {
                sys::YAML_DOCUMENT_START_EVENT => Event::DocumentStart,
                sys::YAML_SCALAR_EVENT => {
                    let scalar = &event.data.scalar;
                    Event::Scalar {
                        node: Node { anchor: c_bytes(scalar.anchor), tag: c_bytes(scalar.tag) },
                        len: scalar.length as usize,
                    }
                }
                sys::YAML_SEQUENCE_START_EVENT => {
                    let start = &event.data.sequence_start;
                    Event::CollectionStart {
                        node: Node { anchor: c_bytes(start.anchor), tag: c_bytes(start.tag) },
                    }
                }
                sys::YAML_MAPPING_START_EVENT => {
                    let start = &event.data.mapping_start;
                    Event::CollectionStart {
                        node: Node { anchor: c_bytes(start.anchor), tag: c_bytes(start.tag) },
                    }
                }
                sys::YAML_SEQUENCE_END_EVENT | sys::YAML_MAPPING_END_EVENT => Event::CollectionEnd,
                sys::YAML_ALIAS_EVENT => {
                    Event::Alias { name: c_bytes(event.data.alias.anchor).unwrap_or_default() }
                }
                sys::YAML_STREAM_END_EVENT | sys::YAML_NO_EVENT => {
                    self.done = true;
                    Event::End
                }
                // The stream's start and a document's end carry nothing the bounds need.
                _ => Event::Other,
            };
            sys::yaml_event_delete(event);
            (converted, mark)
        }
    }
}

impl Drop for Parser<'_> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the parser was initialised in `new` and is deleted exactly once, here.
        unsafe { sys::yaml_parser_delete(self.sys.as_mut_ptr()) }
    }
}

/// A C string of the parser's, copied; `None` for a null pointer.
#[allow(unsafe_code)]
unsafe fn c_bytes(ptr: *const u8) -> Option<Vec<u8>> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: the caller passes a pointer of a live event, which libyaml NUL-terminates.
    Some(unsafe { std::ffi::CStr::from_ptr(ptr.cast()) }.to_bytes().to_vec())
}
