//! Language-model mode (LSTM with a softmax, MoC or MoS head): text
//! generation from a prompt and a seed, sent to the host as token ids and
//! as text (`LmTokens`, `LmText` report records), with the instructions
//! (cycles on a board) of every token.
//!
//! The host may ask for a generation through the [`HostLink`]:
//!
//! ```text
//! request (host → device)  "TILM"  seed u64  tokens u32  prompt_len u32
//!                          then prompt_len bytes of UTF-8 prompt
//! ```
//!
//! The device primes the model ([`Session::prime`]: reset, the start token,
//! the prompt's tokens), then `tokens` times samples the next token with
//! PCG32 seeded by `seed` and feeds it back ([`Session::sample`],
//! [`Session::step`]): the same draws as the host's `lm::run::generate`.
//! Without a request: the empty prompt, seed 0, [`DEFAULT_TOKENS`] tokens.
//!
//! At boot, before any request, the device runs the model's stored
//! self-test ([`LanguageModel::selftest`]: prompts of token ids and the
//! host core's top-k after each) and reports it as the other families do
//! (a `SelfTest` or `NoSelfTest` record; status 1 or 2 at the end of a run
//! that otherwise succeeded).
//!
//! A prompt with text the vocabulary has no token for ends the run with
//! [`Error::BadInput`](tinyinfer::Error::BadInput) (its byte offset), status 29.
//!
//! [`Session::prime`]: tinyinfer::models::Session::prime
//! [`Session::sample`]: tinyinfer::models::Session::sample
//! [`Session::step`]: tinyinfer::models::Session::step

use tinyinfer::format::Level;
use tinyinfer::link::files::LmRequest;
use tinyinfer::models::LanguageModel;
use tinyinfer::rng::Pcg32;

use crate::bench::CycleCounter;
use crate::eval::{HostLink, LinkError};
use crate::{report, Outcome};

/// Bytes of a request before the prompt (`tinyinfer::link::files::LmRequest`).
pub const REQUEST_HEADER_LEN: usize = LmRequest::LEN;
/// Most tokens one request may ask for.
pub const MAX_TOKENS: u32 = 1 << 16;
/// Tokens generated without a request.
pub const DEFAULT_TOKENS: u32 = 64;
/// Token ids per `LmTokens` report record.
pub const IDS_PER_LINE: usize = 16;
/// Bytes of text per `LmText` record and `lm line` (a longer line goes out in pieces).
pub const TEXT_PER_LINE: usize = 64;

/// What to generate; the prompt is in the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub struct Request {
    /// PCG32 seed.
    pub seed: u64,
    /// Tokens to generate.
    pub tokens: u32,
    /// Prompt bytes.
    pub prompt_len: u32,
    /// The host sent it (false: the defaults).
    pub from_host: bool,
}

/// Reads a request; the prompt goes to the start of `prompt`, whose length
/// bounds it.
fn read_request<H: HostLink>(host: &mut H, prompt: &mut [u8]) -> Result<Request, LinkError> {
    if !host.open()? {
        return Ok(Request {
            seed: 0,
            tokens: DEFAULT_TOKENS,
            prompt_len: 0,
            from_host: false,
        });
    }
    let r = read_open_request(host, prompt);
    host.close();
    r
}

fn read_open_request<H: HostLink>(host: &mut H, prompt: &mut [u8]) -> Result<Request, LinkError> {
    let mut b = [0u8; REQUEST_HEADER_LEN];
    host.read_exact(&mut b)?;
    let req = LmRequest::parse(&b);
    let (seed, tokens, prompt_len) = match req {
        Some(r) if r.tokens <= MAX_TOKENS => (r.seed, r.tokens, r.prompt_len),
        r => {
            return Err(LinkError::BadHeader {
                expected: MAX_TOKENS,
                got: r.map_or(0, |r| r.tokens),
            })
        }
    };
    let Some(buf) = prompt.get_mut(..prompt_len as usize) else {
        return Err(LinkError::BadHeader {
            expected: prompt.len() as u32,
            got: prompt_len,
        });
    };
    host.read_exact(buf)?;
    Ok(Request {
        seed,
        tokens,
        prompt_len,
        from_host: true,
    })
}

/// Generated text, sent in pieces: up to and including a newline, or a
/// full buffer, or the end.
struct TextOut {
    buf: heapless::String<TEXT_PER_LINE>,
    /// The last character of the text so far.
    last: Option<char>,
}

impl TextOut {
    fn new() -> Self {
        TextOut {
            buf: heapless::String::new(),
            last: None,
        }
    }

    fn push_str(&mut self, s: &str) {
        for ch in s.chars() {
            self.last = Some(ch);
            if ch == '\n' {
                if self.buf.len() == TEXT_PER_LINE {
                    self.flush();
                }
                // Cannot fail: there is room for the newline.
                let _ = self.buf.push(ch);
                self.flush();
                continue;
            }
            if self.buf.len() + ch.len_utf8() > TEXT_PER_LINE {
                self.flush();
            }
            // Cannot fail: the buffer was flushed if the character did not fit.
            let _ = self.buf.push(ch);
        }
    }

    /// One token, joined as the host's `detokenize` joins it.
    fn token(&mut self, level: Level, t: &str) {
        match level {
            Level::Char => self.push_str(t),
            Level::Word if t == "<eos>" => self.push_str("\n"),
            Level::Word => {
                if self.last.is_some_and(|c| c != '\n') {
                    self.push_str(" ");
                }
                self.push_str(t);
            }
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            report::lm_text(&self.buf);
            self.buf.clear();
        }
    }
}

/// Runs the language-model mode; `prompt` is scratch for the request's prompt.
///
/// Never inlined: its locals then take stack only while this mode runs,
/// not in the app's `main` frame during a classifier's inference.
#[inline(never)]
pub fn run<C: CycleCounter, H: HostLink>(
    counter: &mut C,
    host: &mut H,
    lm: &LanguageModel<'_>,
    arena: &mut [u8],
    prompt: &mut [u8],
) -> Outcome {
    report::lm_model(lm, arena.len());
    if lm.arena_len() > arena.len() {
        return Outcome::Model(tinyinfer::Error::ArenaTooSmall {
            needed: lm.arena_len() as u32,
            got: arena.len() as u32,
        });
    }
    let mut outcome = Outcome::Pass;
    let t0 = counter.now64();
    match lm.selftest(arena) {
        Ok(r) => {
            // The record's count is 32-bit: saturated, never wrapped.
            let t = counter.now64().wrapping_sub(t0).min(u32::MAX as u64) as u32;
            report::selftest(&r, t, C::UNIT);
            if r.passed != r.total || r.total == 0 {
                outcome = Outcome::SelfTestFailed;
            }
        }
        Err(tinyinfer::Error::BadSelfTest) if lm.stored_selftest().is_none() => {
            report::no_selftest();
            outcome = Outcome::NoSelfTest;
        }
        Err(e) => return Outcome::Model(e),
    }
    let req = match read_request(host, prompt) {
        Ok(r) => r,
        Err(e) => {
            report::host_error(e);
            return Outcome::HostIo;
        }
    };
    report::lm_request(&req);
    let bytes = prompt.get(..req.prompt_len as usize).unwrap_or(&[]);
    let text = match core::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to() as u32;
            report::lm_bad_prompt(at);
            return Outcome::Model(tinyinfer::Error::BadInput(at));
        }
    };

    let mut s = match lm.session(arena) {
        Ok(s) => s,
        Err(e) => return Outcome::Model(e),
    };
    let t0 = counter.now64();
    let fed = match s.prime(text) {
        Ok(n) => n,
        Err(e) => {
            if let tinyinfer::Error::BadInput(at) = e {
                report::lm_bad_prompt(at);
            }
            return Outcome::Model(e);
        }
    };
    report::lm_prime(fed, counter.now64().wrapping_sub(t0), C::UNIT);

    let level = lm.spec().level;
    let mut rng = Pcg32::seeded(req.seed);
    let mut ids: heapless::Vec<u16, IDS_PER_LINE> = heapless::Vec::new();
    let mut text = TextOut::new();
    let (mut total, mut min, mut max) = (0u64, u64::MAX, 0u64);
    for _ in 0..req.tokens {
        // Timed: the distribution, the draw and the step; not the report.
        let t0 = counter.now64();
        let t = s.sample(&mut rng);
        if let Err(e) = s.step(t) {
            return Outcome::Model(e);
        }
        let dt = counter.now64().wrapping_sub(t0);
        total += dt;
        min = min.min(dt);
        max = max.max(dt);
        if ids.is_full() {
            report::lm_tokens(&ids);
            ids.clear();
        }
        // Cannot fail: flushed above when full.
        let _ = ids.push(t);
        text.token(level, lm.vocab().token(t as usize).unwrap_or("?"));
    }
    if !ids.is_empty() {
        report::lm_tokens(&ids);
    }
    text.flush();
    report::lm_generated(req.tokens, total, min.min(max), max, C::UNIT);
    outcome
}
