//! Language models: an int8 LSTM with a softmax, Mixture-of-Contexts or
//! Mixture-of-Softmaxes head (Yang et al., "Breaking the Softmax
//! Bottleneck", 2017) over a tied embedding.
//!
//! All arithmetic is integer (see [`crate::kernels::lm`] and
//! [`crate::quant::nonlin`]), so a log-probability, a top-k list or a
//! sampled token is the same on the host and on the device.

use heapless::Vec as HVec;

use super::classifier::SelfTestReport;
use crate::format::{
    ArenaPlan, Family, Level, LmHead, LmSpec, Model, SelfTest, Vocab, MAX_K, MAX_LM_TOP,
};
use crate::kernels::driver as kd;
use crate::kernels::lm::{self as k, QMatrix, Shifts, TiedRows};
use crate::quant::nonlin::exp_neg;
use crate::rng::Rng;
use crate::{Error, Result};

/// A log-probability in units of 2⁻¹⁶ nats (≤ 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LogProb(pub i32);

impl LogProb {
    /// Units per nat.
    pub const ONE: f64 = 65536.0;

    /// In nats.
    pub fn nats(self) -> f64 {
        self.0 as f64 / Self::ONE
    }
}

/// A checked language model: borrow an arena with [`LanguageModel::session`]
/// to run it.
#[derive(Clone, Copy, Debug)]
pub struct LanguageModel<'m> {
    spec: LmSpec<'m>,
    vocab: Vocab<'m>,
    plan: ArenaPlan,
    selftest: Option<SelfTest<'m>>,
}

impl<'m> LanguageModel<'m> {
    /// Wraps a checked model.
    ///
    /// # Errors
    /// [`Error::WrongFamily`] if the model is not a language model.
    // Not inlined: the checked spec's temporary copies (about 450 bytes
    // each) then stay in this frame, popped before the caller runs the
    // model, instead of the caller's (1.4 KB of the firmware's stack).
    #[inline(never)]
    pub fn new(model: Model<'m>) -> Result<Self> {
        if model.family() != Family::LanguageModel {
            return Err(Error::WrongFamily);
        }
        let spec = model.lm_spec().ok_or(Error::BadGraph)?;
        let vocab = model.vocab().ok_or(Error::BadGraph)?;
        Ok(LanguageModel {
            plan: spec.plan_for(model.arena_len()).ok_or(Error::BadHeader)?,
            spec,
            vocab,
            selftest: model.selftest(),
        })
    }

    /// The stored self-test (prompts and top-k results), if any.
    pub fn stored_selftest(&self) -> Option<SelfTest<'m>> {
        self.selftest
    }

    /// Runs the stored self-test: for each case, from the zero state, feeds
    /// the prompt's tokens, then compares the top-k token ids and their Q32
    /// probabilities ([`Session::top_k`]) and the Q16 log-prob of each
    /// ([`Session::log_prob`]) with the stored ones, exactly.
    ///
    /// # Errors
    /// [`Error::BadSelfTest`] when the model has none; as [`session`](Self::session)
    /// and [`Session::step`].
    pub fn selftest(&self, arena: &mut [u8]) -> Result<SelfTestReport> {
        let st = self.selftest.ok_or(Error::BadSelfTest)?;
        let mut s = self.session(arena)?;
        let mut report = SelfTestReport {
            passed: 0,
            total: 0,
            first_failure: None,
        };
        for i in 0..st.count() {
            let case = st.lm_case(i).ok_or(Error::BadSelfTest)?;
            s.reset();
            for t in case.prompt() {
                s.step(t)?;
            }
            // The first N of the top MAX_LM_TOP are the top N (same order).
            let top = s.top_k::<MAX_LM_TOP>();
            let mut same = case.top_len() <= top.len();
            for j in 0..case.top_len() {
                let e = case.top(j).ok_or(Error::BadSelfTest)?;
                same &= top.get(j) == Some(&(e.id, e.p));
                same &= s.log_prob(e.id)? == LogProb(e.log_prob);
            }
            report.record(i, same);
        }
        Ok(report)
    }

    /// Dimensions, head and weights.
    pub fn spec(&self) -> &LmSpec<'m> {
        &self.spec
    }

    /// The token table.
    pub fn vocab(&self) -> Vocab<'m> {
        self.vocab
    }

    /// The token every text starts from: `<eos>` for word models and `\n`
    /// for character models (what training and evaluation feed first),
    /// or token 0 when the table has neither.
    pub fn start_token(&self) -> u16 {
        let t = match self.spec.level {
            Level::Word => "<eos>",
            Level::Char => "\n",
        };
        self.vocab.id(t).unwrap_or(0)
    }

    /// Splits `text` into token ids, calling `f` for each: characters for a
    /// character model; whitespace-separated words for a word model, where
    /// an unknown word becomes `<unk>` if the table has it.
    ///
    /// # Errors
    /// [`Error::BadInput`] with the byte offset of the first piece of text
    /// that has no token.
    pub fn tokenize(&self, text: &str, mut f: impl FnMut(u16) -> Result<()>) -> Result<()> {
        match self.spec.level {
            Level::Char => {
                for (at, ch) in text.char_indices() {
                    let mut buf = [0u8; 4];
                    let id = self
                        .vocab
                        .id(ch.encode_utf8(&mut buf))
                        .ok_or(Error::BadInput(at as u32))?;
                    f(id)?;
                }
            }
            Level::Word => {
                let unk = self.vocab.id("<unk>");
                let base = text.as_ptr() as usize;
                for w in text.split_ascii_whitespace() {
                    let at = (w.as_ptr() as usize - base) as u32;
                    let id = self.vocab.id(w).or(unk).ok_or(Error::BadInput(at))?;
                    f(id)?;
                }
            }
        }
        Ok(())
    }

    /// The same model holding `rows` logits at once in its sessions'
    /// arenas (clamped to `1..=V`) instead of the header's `min(V,`
    /// [`LOGIT_CHUNK`](crate::format::LOGIT_CHUNK)`)`: more arena for fewer decoder passes, or less for
    /// more. Every result is the same; [`arena_len`](Self::arena_len)
    /// follows.
    pub fn with_logit_rows(mut self, rows: usize) -> Self {
        self.plan = self.spec.plan_with(rows);
        self
    }

    /// Arena bytes a session needs (plus up to 3 when the arena is not 4-byte aligned).
    pub fn arena_len(&self) -> usize {
        self.plan.total
    }

    /// Starts a session in `arena` from the zero state (see [`Session::reset`]).
    ///
    /// # Errors
    /// [`Error::ArenaTooSmall`] when `arena` cannot hold the plan.
    /// The session borrows the model rather than copying it (its checked
    /// spec is hundreds of bytes: one copy fewer on the device's stack).
    pub fn session<'a>(&'a self, arena: &'a mut [u8]) -> Result<Session<'m, 'a>> {
        let skip = arena.as_ptr().align_offset(4).min(3);
        let needed = self.plan.total + skip;
        if arena.len() < needed {
            return Err(Error::ArenaTooSmall {
                needed: needed as u32,
                got: arena.len() as u32,
            });
        }
        let arena = &mut arena[skip..needed];
        let mut s = Session {
            lm: self,
            arena,
            pi: [0; MAX_K],
            log_pi: [0; MAX_K],
            dist_ready: false,
        };
        s.reset();
        Ok(s)
    }
}

/// The arena cut into its typed parts.
struct Parts<'a> {
    h: [&'a mut [i8]; crate::format::MAX_LAYERS],
    c: [&'a mut [i16]; crate::format::MAX_LAYERS],
    x: &'a mut [i8],
    gates: &'a mut [i16],
    lat16: &'a mut [i16],
    lat8: &'a mut [i8],
    logits: &'a mut [i32],
    probs: &'a mut [u32],
}

/// A running language model: the LSTM state lives in the caller's arena.
///
/// After [`reset`](Self::reset) or [`step`](Self::step) the next-token
/// distribution is defined: [`log_prob`](Self::log_prob),
/// [`top_k`](Self::top_k) and [`sample`](Self::sample) read it.
pub struct Session<'m, 'a> {
    lm: &'a LanguageModel<'m>,
    arena: &'a mut [u8],
    /// Mixture weights, Q32.
    pi: [u64; MAX_K],
    /// Log mixture weights, Q16.
    log_pi: [i32; MAX_K],
    dist_ready: bool,
}

fn typed<T: bytemuck::Pod>(b: &mut [u8]) -> &mut [T] {
    // Offsets are 4-aligned within a 4-aligned arena and lengths are whole
    // elements; the fallback (never taken) keeps this panic-free.
    match bytemuck::try_cast_slice_mut(b) {
        Ok(s) => s,
        Err(_) => &mut [],
    }
}

impl<'m> Session<'m, '_> {
    /// The model this session runs.
    pub fn model(&self) -> &LanguageModel<'m> {
        self.lm
    }

    /// The arena's buffers. A function of the model and the arena, not of
    /// `&mut self`, so that the callers read the spec in place (`&self.lm.spec`)
    /// instead of copying it to their stack frames (hundreds of bytes each).
    fn parts<'s>(lm: &'s LanguageModel<'_>, arena: &'s mut [u8]) -> Parts<'s> {
        let spec = &lm.spec;
        let p = &lm.plan;
        let mut rest: &mut [u8] = arena;
        let mut at = 0usize;
        let mut cut = |start: usize, len: usize| -> &mut [u8] {
            let r = core::mem::take(&mut rest);
            let (_, r) = r.split_at_mut(start - at);
            let (piece, r) = r.split_at_mut(len);
            rest = r;
            at = start + len;
            piece
        };
        let mut h: [&mut [i8]; crate::format::MAX_LAYERS] = Default::default();
        let mut c: [&mut [i16]; crate::format::MAX_LAYERS] = Default::default();
        for (i, l) in spec.layers().iter().enumerate() {
            h[i] = bytemuck::cast_slice_mut(cut(p.h[i], l.hidden));
            c[i] = typed(cut(p.c[i], 2 * l.hidden));
        }
        let kd = spec.k * spec.emb_dim;
        let x = bytemuck::cast_slice_mut(cut(p.x, spec.emb_dim));
        let gates = typed(cut(p.gates, p.lat16 - p.gates));
        let lat16 = typed(cut(p.lat16, 2 * kd));
        let lat8 = bytemuck::cast_slice_mut(cut(p.lat8, kd));
        let logits = typed(cut(p.logits, 4 * p.logit_rows));
        let probs = typed(cut(p.probs, 4 * spec.vocab));
        Parts {
            h,
            c,
            x,
            gates,
            lat16,
            lat8,
            logits,
            probs,
        }
    }

    /// Zeroes the LSTM state: the distribution becomes the one after no
    /// context at all.
    pub fn reset(&mut self) {
        self.arena.fill(0);
        self.head();
    }

    /// Resets, feeds the start token, then the tokens of `prompt`; returns
    /// how many tokens were fed (the start token included).
    ///
    /// # Errors
    /// As [`LanguageModel::tokenize`]; the state then holds the prompt up to
    /// the bad piece.
    pub fn prime(&mut self, prompt: &str) -> Result<usize> {
        self.reset();
        let lm = self.lm;
        self.step(lm.start_token())?;
        let mut n = 1;
        lm.tokenize(prompt, |t| {
            n += 1;
            self.step(t)
        })?;
        Ok(n)
    }

    /// Feeds `token` and computes the next-token distribution's parameters.
    ///
    /// # Errors
    /// [`Error::BadInput`] for a token outside the vocabulary (the state is
    /// unchanged).
    pub fn step(&mut self, token: u16) -> Result<()> {
        let spec = &self.lm.spec;
        let t = token as usize;
        if t >= spec.vocab {
            return Err(Error::BadInput(token as u32));
        }
        let d = spec.emb_dim;
        let mut p = Self::parts(self.lm, self.arena);
        let (m, s) = spec.emb_rq.get(t);
        k::embed(&spec.emb_w[t * d..(t + 1) * d], m, s, p.x);
        for (i, l) in spec.layers().iter().enumerate() {
            let (lower, upper) = p.h.split_at_mut(i);
            let input: &[i8] = if i == 0 { p.x } else { lower[i - 1] };
            let h = &mut upper[0];
            let wx = QMatrix::of(l.w_x, l.rq_x, l.layout);
            let wh = QMatrix::of(l.w_h, l.rq_h, l.layout);
            let gates = &mut p.gates[..4 * l.hidden];
            kd::lstm_gates(&wx, input, &wh, h, l.bias, gates)?;
            k::lstm_cell(gates, h, p.c[i]);
        }
        self.head();
        Ok(())
    }

    /// Latents, prior and decoder inputs from the top layer's output.
    fn head(&mut self) {
        let spec = &self.lm.spec;
        let (kk, d) = (spec.k, spec.emb_dim);
        let n = spec.layers().len();
        let p = Self::parts(self.lm, self.arena);
        let g: &[i8] = p.h[n - 1];
        let proj = QMatrix::of(spec.proj_w, spec.proj_rq, spec.proj_layout);
        // Cannot fail: LmSpec::parse fixed proj_w = K·d·H, proj_rq and proj_b
        // = K·d, and the plan's lat16 = K·d. Zero latents if it ever did.
        if kd::latent(&proj, spec.proj_b, g, p.lat16).is_err() {
            p.lat16.fill(0);
        }
        let mut pi = [0u64; MAX_K];
        let mut log_pi = [0i32; MAX_K];
        if kk > 1 {
            let prior = QMatrix::rows(spec.prior_w, spec.prior_rq.mult, spec.prior_rq.shift);
            let mut z = [0i32; MAX_K];
            for (c, z) in z.iter_mut().enumerate().take(kk) {
                *z = prior.row(c, g).saturating_add(spec.prior_b[c]);
            }
            // The prior in Q32: π_c = prob_q32 ≤ 2^32 each and Σ π_c ≤ 2^32
            // (see `sample`); log π_c in Q16, ≤ 0.
            let (m, s) = k::softmax_stats(&z[..kk]);
            let r = k::reciprocal(s);
            for c in 0..kk {
                pi[c] = k::prob_q32(z[c], m, r);
                log_pi[c] = k::log_softmax_at(z[c], m, s);
            }
        } else {
            pi[0] = 1 << 32;
        }
        if spec.head == LmHead::Moc {
            // One decoder input: Σ_k π_k·h_k (Q32·Q0.15 = Q47 → Q0.7).
            // Bounds: π_k ≤ 2^32 and |h_k| ≤ 2^15, so each product is
            // ≤ 2^47 and the sum of K ≤ MAX_K of them (plus 2^39) < 2^63.
            for j in 0..d {
                let acc: i64 = (0..kk)
                    .map(|c| pi[c] as i64 * p.lat16[c * d + j] as i64)
                    .sum();
                p.lat8[j] = ((acc + (1 << 39)) >> 40).clamp(-128, 127) as i8;
            }
        } else {
            for (o, &x) in p.lat8.iter_mut().zip(p.lat16.iter()) {
                *o = k::unit_to_q7(x);
            }
        }
        self.pi = pi;
        self.log_pi = log_pi;
        self.dist_ready = false;
    }

    /// Logits of vocabulary softmax `c` for the rows `v0..`, at most `max`
    /// and as many as fit the logits buffer (all of them when `V ≤
    /// LOGIT_CHUNK`), into its start; returns how many.
    fn decode(spec: &LmSpec<'_>, c: usize, v0: usize, max: usize, p: &mut Parts<'_>) -> usize {
        let d = spec.emb_dim;
        let n = p.logits.len().min(max).min(spec.vocab.saturating_sub(v0));
        let rows = v0..v0 + n;
        let dec = TiedRows {
            w: spec.emb_w.get(v0 * d..(v0 + n) * d).unwrap_or_default(),
            mult: spec.dec_rq.mult.get(rows.clone()).unwrap_or_default(),
            shift: spec
                .dec_rq
                .shift
                .rows(rows.clone())
                .unwrap_or(Shifts::PerRow(&[])),
        };
        let b = spec.dec_b.get(rows).unwrap_or_default();
        let lat = p.lat8.get(c * d..(c + 1) * d).unwrap_or_default();
        let out = &mut p.logits[..n];
        // Cannot fail: LmSpec::parse fixed emb_w = V·d, dec_rq and dec_b = V,
        // and the plan's lat8 = K·d. Uniform logits if it ever did.
        if kd::decoder(&dec, b, lat, out).is_err() {
            out.fill(0);
        }
        n
    }

    /// Statistics `(max, Σ exp)` of vocabulary softmax `c` (as
    /// [`k::softmax_stats`] over all `V` logits): [`block_stats`](Self::block_stats)
    /// over the whole vocabulary. When it fits the logits buffer its logits
    /// are left there; otherwise they are decoded chunk by chunk twice (the
    /// maximum, then the sum, which adds up exactly: integer terms).
    fn component(spec: &LmSpec<'_>, c: usize, p: &mut Parts<'_>) -> (i32, u64) {
        Self::block_stats(spec, c, 0..spec.vocab, false, p)
    }

    /// `log P(next | context)`.
    ///
    /// # Errors
    /// [`Error::BadInput`] for a token outside the vocabulary.
    pub fn log_prob(&mut self, next: u16) -> Result<LogProb> {
        let spec = &self.lm.spec;
        let x = next as usize;
        if x >= spec.vocab {
            return Err(Error::BadInput(next as u32));
        }
        let kv = spec.vocab_softmaxes();
        let log_pi = self.log_pi;
        let mut p = Self::parts(self.lm, self.arena);
        let whole = spec.vocab <= p.logits.len();
        let mut a = [0i32; MAX_K];
        for (c, a) in a.iter_mut().enumerate().take(kv) {
            let (m, s) = Self::component(spec, c, &mut p);
            if !whole {
                // The one logit wanted, alone at the buffer's start.
                Self::decode(spec, c, x, 1, &mut p);
            }
            let l = if whole {
                p.logits.get(x)
            } else {
                p.logits.first()
            };
            let ls = k::log_softmax_at(l.copied().unwrap_or(m), m, s);
            *a = if kv > 1 {
                ls.saturating_add(log_pi[c])
            } else {
                ls
            };
        }
        let lp = if kv > 1 { k::logsumexp(&a[..kv]) } else { a[0] };
        Ok(LogProb(lp.min(0)))
    }

    /// The next-token distribution `P(v)` in Q32 (saturated), for every `v`.
    pub fn distribution(&mut self) -> &[u32] {
        if !self.dist_ready {
            let spec = &self.lm.spec;
            let kv = spec.vocab_softmaxes();
            let pi = self.pi;
            let mut p = Self::parts(self.lm, self.arena);
            p.probs.fill(0);
            for (c, &w) in pi.iter().enumerate().take(kv) {
                let (m, s) = Self::component(spec, c, &mut p);
                let r = k::reciprocal(s);
                let mut v = 0;
                while v < spec.vocab {
                    // The whole vocabulary's logits are still in the buffer
                    // from `component`; chunks are decoded again.
                    let n = if spec.vocab <= p.logits.len() {
                        spec.vocab
                    } else {
                        Self::decode(spec, c, v, usize::MAX, &mut p)
                    };
                    if n == 0 {
                        break;
                    }
                    let probs = p.probs.get_mut(v..v + n).unwrap_or_default();
                    for (o, &l) in probs.iter_mut().zip(p.logits.iter()) {
                        let q = k::prob_q32(l, m, r);
                        // q, w ≤ 2^32: their product can be 2^64 (k::mix_q32).
                        let q = if kv > 1 { k::mix_q32(q, w) } else { q };
                        *o = o.saturating_add(q.min(u32::MAX as u64) as u32);
                    }
                    v += n;
                }
            }
            self.dist_ready = true;
        }
        let (at, v) = (self.lm.plan.probs, self.lm.spec.vocab);
        let bytes = self.arena.get(at..at + 4 * v).unwrap_or(&[]);
        bytemuck::try_cast_slice(bytes).unwrap_or(&[])
    }

    /// The `N` most probable next tokens with their probabilities (Q32),
    /// most probable first; ties go to the smaller token id.
    pub fn top_k<const N: usize>(&mut self) -> HVec<(u16, u32), N> {
        let mut top: HVec<(u16, u32), N> = HVec::new();
        if N == 0 {
            return top;
        }
        for (v, &q) in self.distribution().iter().enumerate() {
            let full = top.len() == N;
            if full && top.last().is_some_and(|&(_, lq)| lq >= q) {
                continue;
            }
            if full {
                top.pop();
            }
            let at = top.iter().position(|&(_, tq)| tq < q).unwrap_or(top.len());
            // Cannot fail: one slot was free or was just freed.
            let _ = top.insert(at, (v as u16, q));
        }
        top
    }

    /// Draws the next token from the next-token distribution.
    ///
    /// A mixture is sampled as what it is: the component `c` with
    /// probability `π_c` (one `u32` of `rng`), then a token from that
    /// component's softmax alone. Only the drawn component's logits are
    /// decoded (a softmax or MoC head has one component and skips that
    /// draw), so a word-level MoS head with K softmaxes decodes `1/K` of
    /// what [`distribution`](Self::distribution) does, and the
    /// probabilities buffer is not touched. A token's probability is
    /// `Σ_c π_c · softmax_c(v)`, the distribution's (the host tools'
    /// `assert_distribution_and_sampling` counts seeded draws against
    /// [`distribution`](Self::distribution)).
    ///
    /// Within the softmax, a vocabulary of more than [`SAMPLE_BLOCK`] rows
    /// is drawn in two levels, so that the logits are decoded once and one
    /// block of them twice (not three times, as a global maximum, sum and
    /// walk would need): each block `b`'s maximum `m_b` and exact integer
    /// sum `S_b = Σ exp(l − m_b)`, then the block with weight `S_b ·
    /// exp(m_b − max m)` (one `u32`), then the token in it by a walk over
    /// the same integer terms as `S_b` (one `u32`), which always ends on a
    /// token. Blocks are fixed rows of the vocabulary, so the draws do
    /// not depend on the arena's plan ([`LanguageModel::with_logit_rows`]).
    pub fn sample(&mut self, rng: &mut impl Rng) -> u16 {
        let spec = &self.lm.spec;
        let u_component = if spec.vocab_softmaxes() > 1 {
            rng.next_u32()
        } else {
            0
        };
        let u_block = if spec.vocab > SAMPLE_BLOCK {
            rng.next_u32()
        } else {
            0
        };
        self.draw(u_component, u_block, rng.next_u32())
    }

    /// [`sample`](Self::sample) with its draws made (one copy of the code
    /// whatever the generator).
    #[inline(never)]
    fn draw(&mut self, u_component: u32, u_block: u32, u_token: u32) -> u16 {
        let spec = &self.lm.spec;
        let kv = spec.vocab_softmaxes();
        let c = if kv > 1 {
            // Bounds: each π_c ≤ 2^32 and Σ π_c ≤ 2^32 (see `head`), so
            // u · total ≤ (2^32 − 1) · 2^32 < 2^64; the saturation only
            // guards the proof.
            let u = u_component as u64;
            let pi = &self.pi[..kv];
            let total: u64 = pi.iter().sum();
            pick(pi.iter().copied(), u.saturating_mul(total) >> 32).unwrap_or(kv - 1)
        } else {
            0
        };
        let v = spec.vocab;
        let blocks = v.div_ceil(SAMPLE_BLOCK).min(MAX_BLOCKS);
        let mut p = Self::parts(self.lm, self.arena);
        let decoded = v <= p.logits.len();
        if decoded {
            Self::decode(spec, c, 0, v, &mut p);
        }
        let block = |b: usize| b * SAMPLE_BLOCK..((b + 1) * SAMPLE_BLOCK).min(v);
        let (mut bm, mut bs) = ([i32::MIN; MAX_BLOCKS], [0u64; MAX_BLOCKS]);
        for b in 0..blocks {
            (bm[b], bs[b]) = Self::block_stats(spec, c, block(b), decoded, &mut p);
        }
        let b = if blocks > 1 {
            let top = bm[..blocks].iter().copied().max().unwrap_or(0);
            // w_b = ⌊S_b · exp(m_b − top) / 2^30⌋ ≤ S_b ≤ SAMPLE_BLOCK · 2^30
            // = 2^40, so Σ w_b ≤ 2^46; the leading block's w_b ≥ 2^30.
            let w = |b: usize| mul_q30(bs[b], exp_neg((top as i64 - bm[b] as i64) as u32));
            let total: u64 = (0..blocks).map(w).sum();
            pick((0..blocks).map(w), mul_u32(total, u_block)).unwrap_or(blocks - 1)
        } else {
            0
        };
        let (m, rows) = (bm[b], block(b));
        let last = rows.end.saturating_sub(1);
        let target = mul_u32(bs[b], u_token);
        let mut cum = 0u64;
        let walk = |l: &[i32]| {
            let terms = l
                .iter()
                .map(|&l| exp_neg((m as i64 - l.min(m) as i64) as u32) as u64);
            pick_from(terms, target, &mut cum)
        };
        Self::over_rows(spec, c, rows, decoded, &mut p, walk).unwrap_or(last) as u16
    }

    /// Calls `f` on the logits of softmax `c` for `rows`, in order, in as
    /// few pieces as the logits buffer allows, until it returns a position
    /// (then the row's index); with `decoded` the whole vocabulary's logits
    /// are in the buffer already.
    fn over_rows(
        spec: &LmSpec<'_>,
        c: usize,
        rows: core::ops::Range<usize>,
        decoded: bool,
        p: &mut Parts<'_>,
        mut f: impl FnMut(&[i32]) -> Option<usize>,
    ) -> Option<usize> {
        if decoded {
            let l = p.logits.get(rows.clone()).unwrap_or_default();
            return f(l).map(|i| rows.start + i);
        }
        let mut v = rows.start;
        while v < rows.end {
            let n = Self::decode(spec, c, v, rows.end - v, p);
            if n == 0 {
                break;
            }
            if let Some(i) = f(p.logits.get(..n).unwrap_or_default()) {
                return Some(v + i);
            }
            v += n;
        }
        None
    }

    /// `(max, Σ exp(l − max))` of softmax `c` over `rows` (Q16 logits, the
    /// sum in Q30 as [`k::softmax_stats`]): one decoder pass when the rows
    /// fit the logits buffer, else two (the maximum, then the sum).
    fn block_stats(
        spec: &LmSpec<'_>,
        c: usize,
        rows: core::ops::Range<usize>,
        decoded: bool,
        p: &mut Parts<'_>,
    ) -> (i32, u64) {
        if decoded || rows.len() <= p.logits.len() {
            let l = if decoded {
                p.logits.get(rows).unwrap_or_default()
            } else {
                let n = Self::decode(spec, c, rows.start, rows.len(), p);
                p.logits.get(..n).unwrap_or_default()
            };
            return k::softmax_stats(l);
        }
        let mut m = i32::MIN;
        Self::over_rows(spec, c, rows.clone(), false, p, |l| {
            m = l.iter().fold(m, |m, &x| m.max(x));
            None
        });
        let mut s = 0u64;
        Self::over_rows(spec, c, rows, false, p, |l| {
            s += k::exp_sum(l, m);
            None
        });
        (m, s)
    }
}

/// Rows of the vocabulary per block of [`Session::sample`]'s two-level
/// draw: fixed, so that the draws are the same for every arena plan.
pub const SAMPLE_BLOCK: usize = crate::format::LOGIT_CHUNK;
/// Blocks of the largest vocabulary.
const MAX_BLOCKS: usize = crate::format::MAX_VOCAB.div_ceil(SAMPLE_BLOCK);

/// `⌊a · u / 2^32⌋` for `a < 2^48`, exactly: with `a = hi · 2^32 + lo`,
/// `hi · u + ⌊lo · u / 2^32⌋` (`hi · u < 2^48`, `lo · u < 2^64`). Below `a`
/// when `a > 0`.
fn mul_u32(a: u64, u: u32) -> u64 {
    let u = u as u64;
    (a >> 32)
        .wrapping_mul(u)
        .wrapping_add(((a & 0xFFFF_FFFF) * u) >> 32)
}

/// `⌊a · e / 2^30⌋` for `e ≤ 2^30` and `a < 2^48`, exactly: `hi · e · 4 +
/// ⌊lo · e / 2^30⌋` (`hi · e · 4 < 2^48`, `lo · e < 2^62`).
fn mul_q30(a: u64, e: u32) -> u64 {
    let e = e as u64;
    (a >> 32)
        .wrapping_mul(4 * e)
        .wrapping_add(((a & 0xFFFF_FFFF) * e) >> 30)
}

/// The index of the first of `weights` whose running sum passes `target`.
fn pick(weights: impl Iterator<Item = u64>, target: u64) -> Option<usize> {
    pick_from(weights, target, &mut 0)
}

/// [`pick`] continuing a running sum `cum` (left at the sum of all
/// `weights` when none passes).
fn pick_from(weights: impl Iterator<Item = u64>, target: u64, cum: &mut u64) -> Option<usize> {
    for (i, w) in weights.enumerate() {
        // Bounds: the callers' weights sum to at most 2^47.
        *cum = cum.wrapping_add(w);
        if *cum > target {
            return Some(i);
        }
    }
    None
}
