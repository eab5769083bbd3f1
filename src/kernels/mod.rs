//! int8 kernels.
//!
//! [`reference`] holds the contract: plain free functions over slices plus a
//! params struct, written to be obviously right. Optimized versions (for
//! Cortex-M DSP instructions) will sit beside them and must produce the same
//! bytes; the shared property suite in `tests/` holds them to it.
//!
//! Kernels check that every slice has the length its params imply and return
//! [`Error::BadLength`](crate::Error::BadLength) otherwise, so a kernel never
//! panics whatever it is given. They do not know about the model format.

pub mod reference;
