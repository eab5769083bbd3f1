//! int8 kernels.
//!
//! [`reference`] holds the contract: plain free functions over slices plus a
//! params struct, written to be obviously right. [`fast`] sits beside it:
//! the same functions, rewritten for speed in portable safe Rust, producing
//! the same bytes; the shared property suite in `tests/` holds every
//! implementation to the same wide-integer statement. The model driver
//! uses [`fast`].
//!
//! Kernels check that every slice has the length its params imply and return
//! [`Error::BadLength`](crate::Error::BadLength) otherwise, so a kernel never
//! panics whatever it is given. They do not know about the model format.

pub mod fast;
pub mod reference;
