//! Errors of the rich-text Delta type.

/// Why a Delta, an op or a presence value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// The value is neither an array of ops nor an object `{"ops": [...]}`.
    #[error("a delta must be an array of ops or an object with an `ops` array")]
    NotADelta,
    /// One op of the delta is malformed.
    #[error("op {index}: {reason}")]
    InvalidOp {
        /// Position of the op in the ops array.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An operation that needs a document (inserts only) got a delta with retains or deletes.
    #[error("expected a document (inserts only), found a {found} at op {index}")]
    NotADocument {
        /// Position of the first offending op.
        index: usize,
        /// `"retain"` or `"delete"`.
        found: &'static str,
    },
    /// The op retains or deletes past the end of the document.
    #[error("op reaches UTF-16 position {end} but the document is only {len} units long")]
    OutOfRange {
        /// Where the op's retains and deletes end.
        end: usize,
        /// The document length in UTF-16 code units.
        len: usize,
    },
    /// An op boundary falls between the two halves of a surrogate pair.
    #[error("op boundary at UTF-16 position {position} splits a surrogate pair")]
    SplitsSurrogatePair {
        /// The offending position, in UTF-16 code units of the document.
        position: usize,
    },
    /// A presence value is not null and not a range object.
    #[error("invalid presence range: {0}")]
    InvalidRange(String),
}
