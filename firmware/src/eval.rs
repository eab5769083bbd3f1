//! Evaluation of host-supplied images: the host sends images and labels, the
//! device sends back the int8 scores of each.
//!
//! The bytes travel over a [`HostLink`] (semihosting files on QEMU). Both
//! streams are little-endian; `tinyinfer simulate` writes and reads them.
//!
//! ```text
//! input  (host → device)  "TIEI"  count u32  input_len u32  reserved u32
//!                         then count records: input_len pixel bytes, 1 label byte
//! output (device → host)  "TIEO"  count u32  classes u32    reserved u32
//!                         then count records: classes int8 scores
//! ```

use tinyinfer::link::files::{EvalRequest, EvalResponse};
use tinyinfer::models::Classifier;

/// Header bytes of either stream (`tinyinfer::link::files`).
pub const HEADER_LEN: usize = EvalRequest::LEN;

/// The host link failed or sent something unexpected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum LinkError {
    /// Reading from the host failed or ended early.
    Read,
    /// Writing to the host failed.
    Write,
    /// The input header is not `TIEI` or its input length is not the model's.
    BadHeader {
        /// Input bytes per image the model needs.
        expected: u32,
        /// Input bytes per image the host sends.
        got: u32,
    },
    /// A label outside the model's classes.
    BadLabel(u8),
}

/// Why an evaluation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum EvalError {
    /// The host link failed.
    Link(LinkError),
    /// The core refused an input (a bug: the model was checked).
    Core(tinyinfer::Error),
}

impl From<LinkError> for EvalError {
    fn from(e: LinkError) -> Self {
        EvalError::Link(e)
    }
}

/// A byte channel to the host: where evaluation images come from.
pub trait HostLink {
    /// Opens the host's evaluation input and the output for the scores;
    /// `Ok(false)` when the host offers no images.
    ///
    /// # Errors
    /// [`LinkError`] when the host offers images but the output cannot be opened.
    fn open(&mut self) -> Result<bool, LinkError>;
    /// Reads exactly `buf.len()` bytes.
    ///
    /// # Errors
    /// [`LinkError::Read`].
    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), LinkError>;
    /// Writes all of `buf`.
    ///
    /// # Errors
    /// [`LinkError::Write`].
    fn write_all(&mut self, buf: &[u8]) -> Result<(), LinkError>;
    /// Ends the exchange (closes files).
    fn close(&mut self) {}
}

/// No host: boards without a link evaluate nothing.
pub struct NoHost;

impl HostLink for NoHost {
    fn open(&mut self) -> Result<bool, LinkError> {
        Ok(false)
    }
    fn read_exact(&mut self, _: &mut [u8]) -> Result<(), LinkError> {
        Err(LinkError::Read)
    }
    fn write_all(&mut self, _: &[u8]) -> Result<(), LinkError> {
        Err(LinkError::Write)
    }
}

/// What an evaluation found.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct EvalReport {
    /// Images classified.
    pub images: u32,
    /// Images whose predicted class equals the label.
    pub correct: u32,
}

/// Classifies every image the host offers and sends the scores back.
///
/// Returns `Ok(None)` when the host offers none. `input` must hold one image.
///
/// # Errors
/// [`EvalError`] when the link fails or the host's stream does not fit the model.
pub fn run<H: HostLink>(
    model: &Classifier<'_>,
    host: &mut H,
    arena: &mut [u8],
    input: &mut [u8],
) -> Result<Option<EvalReport>, EvalError> {
    if !host.open()? {
        return Ok(None);
    }
    let r = exchange(model, host, arena, input);
    host.close();
    r.map(Some)
}

fn exchange<H: HostLink>(
    model: &Classifier<'_>,
    host: &mut H,
    arena: &mut [u8],
    input: &mut [u8],
) -> Result<EvalReport, EvalError> {
    let mut head = [0u8; HEADER_LEN];
    host.read_exact(&mut head)?;
    let req = EvalRequest::parse(&head);
    let (count, len) = req.map_or((0, 0), |r| (r.count, r.input_len));
    let n = model.input_len();
    let bad = LinkError::BadHeader {
        expected: n as u32,
        got: len,
    };
    if req.is_none() || len as usize != n {
        return Err(bad.into());
    }
    let pixels = input.get_mut(..n).ok_or(bad)?;

    let classes = model.classes() as u32;
    let mut out = [0u8; HEADER_LEN];
    EvalResponse {
        count,
        classes,
        reserved: 0,
    }
    .emit(&mut out);
    host.write_all(&out)?;

    let mut report = EvalReport {
        images: 0,
        correct: 0,
    };
    for _ in 0..count {
        host.read_exact(pixels)?;
        let mut label = [0u8];
        host.read_exact(&mut label)?;
        if label[0] as u32 >= classes {
            return Err(LinkError::BadLabel(label[0]).into());
        }
        let pred = model.classify(pixels, arena).map_err(EvalError::Core)?;
        host.write_all(bytemuck::cast_slice(pred.scores))?;
        report.images += 1;
        report.correct += (pred.class == label[0] as usize) as u32;
    }
    Ok(report)
}
