//! Float language model ([`LmF`]) → int8 `.tinf` blob.
//!
//! Every scale is fixed by the format except the embedding's: gates and
//! latent pre-activations are Q3.12, the cell Q4.11, hidden outputs and
//! decoder inputs Q0.7, logits Q16 nats. Weights are symmetric int8 with
//! one scale per row; the exporter folds each row's scale into its
//! requantization multiplier, so the device only multiplies and shifts.

use anyhow::{anyhow, ensure, Context, Result};
use tinyinfer::format::{
    Body, Family, LmSpec, ModelRepr, SectionKind, Vocab, WeightLayout, LM_HEADER_WORDS,
    LM_LAYER_WORDS, LM_SPEC_VERSION, LM_TOP_LEN, MAX_LM_TOP, MAX_TOKEN_BYTES, NONE,
    VOCAB_SORTED_INDEX,
};
use tinyinfer::models::{LanguageModel, LogProb};
use tinyinfer::rng::Pcg32;

use super::float::{HeadKind, Level, LmF};
use crate::common::blob::AlignedBlob;
use crate::common::calibrate::{i32_bytes, push_aligned, quantize_weights, requant_pair};

/// Real value of one unit of a hidden output or decoder input (Q0.7).
pub const H_SCALE: f64 = 1.0 / 128.0;
/// Units per real of a gate pre-activation (Q3.12).
pub const GATE_ONE: f64 = 4096.0;
/// Units per nat of a logit (Q16).
pub const LOGIT_ONE: f64 = 65536.0;

/// An exported language model and what the exporter knows about it.
#[derive(Clone, Debug)]
pub struct LmExport {
    /// The blob.
    pub blob: Vec<u8>,
    /// Arena bytes a session needs.
    pub arena_len: usize,
    /// Scale of the layer-0 input (embedding rows are requantized to it).
    pub input_scale: f64,
}

fn requant_rows(scales: &[f32], unit: f64, one: f64, what: &str) -> Result<Vec<i32>> {
    let mut m = Vec::with_capacity(scales.len());
    let mut s = Vec::with_capacity(scales.len());
    for (i, &sc) in scales.iter().enumerate() {
        let (a, b) = requant_pair(sc as f64 * unit * one, &format!("{what} row {i}"))?;
        m.push(a);
        s.push(b);
    }
    m.extend(s);
    Ok(m)
}

/// The version-2 form of [`requant_rows`] for the per-word arrays: the
/// `n` multipliers, then one shift shared by every row, the largest row's
/// (each multiplier `round(scale · 2^(31 − shift))`, so a row `r` times
/// smaller than the largest keeps about `31 − log2 r` bits).
///
/// Rows whose int8 weights are all zero (`live[i]` false) get multiplier 0
/// and no say in the shift: `quantize_weights` gives such a row a dummy
/// scale of 1, which would otherwise cost every other row bits.
fn requant_shared(
    scales: &[f32],
    live: &[bool],
    unit: f64,
    one: f64,
    what: &str,
) -> Result<Vec<i32>> {
    ensure!(
        live.len() == scales.len(),
        "{what}: {} rows, {} flags",
        scales.len(),
        live.len()
    );
    let reals: Vec<f64> = scales
        .iter()
        .zip(live)
        .map(|(&s, &l)| if l { s as f64 * unit * one } else { 0.0 })
        .collect();
    let mut shift = i32::MIN;
    for (i, &r) in reals.iter().enumerate() {
        let (m, s) = requant_pair(r, &format!("{what} row {i}"))?;
        if m != 0 {
            shift = shift.max(s);
        }
    }
    if shift == i32::MIN {
        shift = 0; // every row is zero
    }
    loop {
        let mults: Option<Vec<i32>> = reals
            .iter()
            .map(|&r| {
                let m = (r * 2f64.powi(31 - shift)).round();
                (m < 2f64.powi(31)).then_some(m as i32)
            })
            .collect();
        match mults {
            Some(mut m) => {
                ensure!(
                    m.iter().all(|&m| tinyinfer::quant::valid(m, shift)),
                    "{what}: shared shift {shift} out of range"
                );
                m.push(shift);
                return Ok(m);
            }
            // A multiplier rounded up to 2^31: one more bit of shift.
            None => shift += 1,
        }
    }
}

fn bias_q(b: &[f32], one: f64, what: &str) -> Result<Vec<i32>> {
    b.iter()
        .map(|&v| {
            let q = (v as f64 * one).round();
            ensure!(
                v.is_finite() && q.abs() < (1u64 << 28) as f64,
                "{what}: bias {v} out of range"
            );
            Ok(q as i32)
        })
        .collect()
}

/// Tokens of a self-test prompt (the start token, then tokens the int8
/// model samples).
pub const SELFTEST_PROMPT: usize = 16;
/// Top-k entries stored per self-test case (fewer for a smaller vocabulary).
pub const SELFTEST_TOP: usize = 5;
/// Most self-test cases the exporter writes.
pub const MAX_SELFTEST_CASES: usize = 4096;

/// The VOCAB section of a token table, with the sorted index
/// ([`VOCAB_SORTED_INDEX`]): the token ids in the byte order of their texts.
///
/// # Errors
/// An empty or too long token, a table too large for `u16` ids, or a token
/// that appears twice.
pub fn vocab_section<S: AsRef<str>>(vocab: &[S]) -> Result<Vec<u8>> {
    ensure!(
        vocab.len() <= tinyinfer::format::MAX_VOCAB,
        "{} tokens: token ids are u16",
        vocab.len()
    );
    let mut out = Vec::new();
    out.extend_from_slice(&(vocab.len() as u32).to_le_bytes());
    out.extend_from_slice(&VOCAB_SORTED_INDEX.to_le_bytes());
    let mut bytes = Vec::new();
    let mut offsets = vec![0u32];
    for (i, t) in vocab.iter().enumerate() {
        let t = t.as_ref();
        ensure!(
            !t.is_empty() && t.len() <= MAX_TOKEN_BYTES,
            "token {i} ({t:?}) is empty or longer than {MAX_TOKEN_BYTES} bytes"
        );
        bytes.extend_from_slice(t.as_bytes());
        offsets.push(bytes.len() as u32);
    }
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    let mut index: Vec<u16> = (0..vocab.len() as u16).collect();
    index.sort_by(|&a, &b| vocab[a as usize].as_ref().cmp(vocab[b as usize].as_ref()));
    if let Some(w) = index
        .windows(2)
        .find(|w| vocab[w[0] as usize].as_ref() == vocab[w[1] as usize].as_ref())
    {
        anyhow::bail!(
            "tokens {} and {} are the same text ({:?})",
            w[0].min(w[1]),
            w[0].max(w[1]),
            vocab[w[0] as usize].as_ref()
        );
    }
    for i in &index {
        out.extend_from_slice(&i.to_le_bytes());
    }
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&bytes);
    Ok(out)
}

/// Self-test records of a language model (see `tinyinfer::format::SelfTest`):
/// case `i` is the start token and [`SELFTEST_PROMPT`] − 1 tokens the int8
/// model samples with PCG32 seed `i`, then the top min([`SELFTEST_TOP`], V)
/// next tokens with their Q32 probabilities and Q16 log-probs, all from
/// the host core. Returns `(input_len, output_len, records)`.
///
/// # Errors
/// `blob` is not a language model the core accepts.
pub fn selftest_records(blob: &[u8], cases: usize) -> Result<(u32, u32, Vec<u8>)> {
    let ab = AlignedBlob::new(blob);
    let lm = LanguageModel::new(ab.model()?).map_err(|e| anyhow!("not a language model: {e}"))?;
    let n = SELFTEST_TOP.min(lm.spec().vocab).min(MAX_LM_TOP);
    let mut arena = vec![0u8; lm.arena_len() + 4];
    let mut s = lm.session(&mut arena).map_err(|e| anyhow!("{e}"))?;
    let core = |e: tinyinfer::Error| anyhow!("host core: {e}");
    let mut recs = Vec::new();
    for i in 0..cases {
        let mut rng = Pcg32::seeded(i as u64);
        s.reset();
        let mut prompt = vec![lm.start_token()];
        s.step(prompt[0]).map_err(core)?;
        while prompt.len() < SELFTEST_PROMPT {
            let t = s.sample(&mut rng);
            s.step(t).map_err(core)?;
            prompt.push(t);
        }
        // The device replays the prompt from the zero state: so does the host.
        s.reset();
        for &t in &prompt {
            s.step(t).map_err(core)?;
            recs.extend_from_slice(&t.to_le_bytes());
        }
        let top = s.top_k::<MAX_LM_TOP>();
        for &(id, p) in top.iter().take(n) {
            let LogProb(lp) = s.log_prob(id).map_err(core)?;
            recs.extend_from_slice(&id.to_le_bytes());
            recs.extend_from_slice(&0u16.to_le_bytes());
            recs.extend_from_slice(&p.to_le_bytes());
            recs.extend_from_slice(&lp.to_le_bytes());
        }
        while recs.len() % 4 != 0 {
            recs.push(0);
        }
    }
    Ok((2 * SELFTEST_PROMPT as u32, (n * LM_TOP_LEN) as u32, recs))
}

/// The layout this exporter writes an LSTM layer's gate matrices in
/// (`[4H][I]` and `[4H][H]`): row quads when both fit
/// ([`WeightLayout::quads_fit`]), for the DSP kernels; rows otherwise.
pub fn gate_layout(input: usize, hidden: usize) -> WeightLayout {
    let rows = 4 * hidden;
    if quads_serve(rows, input) && quads_serve(rows, hidden) {
        WeightLayout::RowQuads
    } else {
        WeightLayout::Rows
    }
}

/// Whether a `[rows][depth]` matrix is written in row quads: it fits them,
/// and the DSP kernels serve its depth ([`WeightLayout::DSP_MAX_DEPTH`]; a
/// deeper matrix in row quads would fall back to the reference kernel on
/// the device, where rows keep the DSP path).
fn quads_serve(rows: usize, depth: usize) -> bool {
    WeightLayout::quads_fit(rows, depth) && depth <= WeightLayout::DSP_MAX_DEPTH
}

/// The layout this exporter writes the `[K·d][H]` latent projections in:
/// row quads when they fit, as [`gate_layout`].
pub fn proj_layout(rows: usize, top: usize) -> WeightLayout {
    if quads_serve(rows, top) {
        WeightLayout::RowQuads
    } else {
        WeightLayout::Rows
    }
}

/// Every value of `old` read back from the rewritten `LM` section and
/// `DATA`: the matrices through their (new) layouts, the other arrays
/// byte for byte.
fn verify_relayout(old: &LmSpec<'_>, lm_sec: &[u8], data: &[u8]) -> Result<()> {
    let new = LmSpec::parse(lm_sec, data).context("the rewritten LM section")?;
    let same_matrix = |(ow, ol): (&[i8], WeightLayout),
                       (nw, nl): (&[i8], WeightLayout),
                       rows: usize,
                       depth: usize| {
        (0..rows).all(|r| {
            (0..depth).all(|c| {
                let o = ow.get(ol.index(r, c, depth)).map(|&b| ol.decode(r, b));
                let n = nw.get(nl.index(r, c, depth)).map(|&b| nl.decode(r, b));
                o.is_some() && o == n
            })
        })
    };
    let mut same = old.layers().len() == new.layers().len()
        && same_matrix(
            (old.proj_w, old.proj_layout),
            (new.proj_w, new.proj_layout),
            old.k * old.emb_dim,
            old.top_hidden(),
        )
        && old.emb_w == new.emb_w
        && old.emb_rq.mult == new.emb_rq.mult
        && old.emb_rq.shift == new.emb_rq.shift
        && old.dec_rq.mult == new.dec_rq.mult
        && old.dec_rq.shift == new.dec_rq.shift
        && old.dec_b == new.dec_b
        && old.proj_rq.mult == new.proj_rq.mult
        && old.proj_rq.shift == new.proj_rq.shift
        && old.proj_b == new.proj_b
        && old.prior_w == new.prior_w
        && old.prior_rq.mult == new.prior_rq.mult
        && old.prior_rq.shift == new.prior_rq.shift
        && old.prior_b == new.prior_b;
    for (o, n) in old.layers().iter().zip(new.layers()) {
        let rows = 4 * o.hidden;
        same &= same_matrix((o.w_x, o.layout), (n.w_x, n.layout), rows, o.input)
            && same_matrix((o.w_h, o.layout), (n.w_h, n.layout), rows, o.hidden)
            && o.rq_x.mult == n.rq_x.mult
            && o.rq_x.shift == n.rq_x.shift
            && o.rq_h.mult == n.rq_h.mult
            && o.rq_h.shift == n.rq_h.shift
            && o.bias == n.bias;
    }
    ensure!(
        same,
        "the model's arrays overlap in DATA: its weights cannot be moved to another layout"
    );
    Ok(())
}

/// The row-by-row `[rows][depth]` matrix `w` stored in `layout`.
fn laid_out(w: &[i8], rows: usize, depth: usize, layout: WeightLayout) -> Result<Vec<i8>> {
    let mut out = vec![0i8; w.len()];
    ensure!(
        layout.encode(w, rows, depth, &mut out),
        "a [{rows}][{depth}] matrix cannot be stored as {layout:?}"
    );
    Ok(out)
}

/// Rewrites a language-model blob in this exporter's layout: the same
/// weights and `LM` fields, with each LSTM layer's gate matrices moved to
/// [`gate_layout`] (a permutation of their bytes; every result is the
/// same), the token table with its sorted index, and `cases` self-test
/// cases ([`selftest_records`]; none for 0). For blobs exported before the
/// index, the LM self-test or the row-quads layout, without their
/// checkpoint.
///
/// # Errors
/// `blob` is not a language model the core accepts, or `cases` exceeds
/// [`MAX_SELFTEST_CASES`].
pub fn repack(blob: &[u8], cases: usize) -> Result<Vec<u8>> {
    repack_as(blob, cases, true)
}

/// [`repack`], or with `quads` false every matrix row by row instead of
/// the exporter's layouts (tests compare the two).
pub(crate) fn repack_as(blob: &[u8], cases: usize, quads: bool) -> Result<Vec<u8>> {
    ensure!(
        cases <= MAX_SELFTEST_CASES,
        "{cases} self-test cases: at most {MAX_SELFTEST_CASES}"
    );
    let ab = AlignedBlob::new(blob);
    let model = ab.model()?;
    let lm = LanguageModel::new(model).map_err(|e| anyhow!("not a language model: {e}"))?;
    let Body::Lstm(_) = model.body() else {
        anyhow::bail!("not a language model");
    };
    let v = lm.vocab();
    let tokens: Vec<&str> = (0..v.len())
        .map(|i| v.token(i).context("token table"))
        .collect::<Result<_>>()?;
    let vocab = vocab_section(&tokens)?;
    let section = |k: SectionKind| {
        model
            .section(k)
            .with_context(|| format!("no {k:?} section"))
    };
    let (lm_sec, data) = (section(SectionKind::Lm)?, section(SectionKind::Data)?);
    let (mut lm_sec, mut data) = (lm_sec.to_vec(), data.to_vec());
    let rows_unless = |l: WeightLayout| if quads { l } else { WeightLayout::Rows };
    for (i, l) in lm.spec().layers().iter().enumerate() {
        let layout = rows_unless(gate_layout(l.input, l.hidden));
        if l.layout == layout {
            continue;
        }
        let word = |j: usize| 4 * (LM_HEADER_WORDS + LM_LAYER_WORDS * i + j);
        let rows = 4 * l.hidden;
        for (j, depth) in [(2, l.input), (3, l.hidden)] {
            let at = word(j);
            let off = u32::from_le_bytes(lm_sec[at..at + 4].try_into()?) as usize;
            let n = rows * depth;
            let src: Vec<i8> = (0..rows)
                .flat_map(|r| (0..depth).map(move |c| (r, c)))
                .map(|(r, c)| {
                    l.layout
                        .decode(r, data[off + l.layout.index(r, c, depth)] as i8)
                })
                .collect();
            let dst = laid_out(&src, rows, depth, layout)?;
            data[off..off + n].copy_from_slice(bytemuck::cast_slice(&dst));
        }
        let at = word(7);
        lm_sec[at..at + 4].copy_from_slice(&(layout as u32).to_le_bytes());
    }
    let spec = lm.spec();
    let (rows, top) = (spec.k * spec.emb_dim, spec.top_hidden());
    let layout = rows_unless(proj_layout(rows, top));
    if spec.proj_layout != layout {
        let off = u32::from_le_bytes(lm_sec[4 * 12..4 * 13].try_into()?) as usize;
        let old = spec.proj_layout;
        let src: Vec<i8> = (0..rows)
            .flat_map(|r| (0..top).map(move |c| (r, c)))
            .map(|(r, c)| old.decode(r, data[off + old.index(r, c, top)] as i8))
            .collect();
        let dst = laid_out(&src, rows, top, layout)?;
        data[off..off + rows * top].copy_from_slice(bytemuck::cast_slice(&dst));
        lm_sec[4 * 7..4 * 8].copy_from_slice(&(layout as u32).to_le_bytes());
    }
    // Arrays may overlap in a blob the checker accepts (none that this
    // exporter writes): read every weight back through the new layouts
    // and every other array as it was, so that a repack never changes a
    // value.
    verify_relayout(lm.spec(), &lm_sec, &data)?;
    let (lm_sec, data) = (&lm_sec[..], &data[..]);
    let emit = |selftest: Option<(u32, u32, &[u8])>| -> Result<Vec<u8>> {
        let repr = ModelRepr {
            family: Family::LanguageModel,
            arena_len: model.arena_len() as u32,
            tensors: &[],
            ops: &[],
            data,
            selftest,
            head: None,
            lm: Some(lm_sec),
            vocab: Some(&vocab),
        };
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(&mut out)
            .map_err(|e| anyhow!("emitting the model: {e}"))?;
        let check = AlignedBlob::new(&out);
        LanguageModel::new(check.model()?)
            .map_err(|e| anyhow!("the core refuses the model: {e}"))?;
        Ok(out)
    };
    let plain = emit(None)?;
    if cases == 0 {
        return Ok(plain);
    }
    let (il, ol, recs) = selftest_records(&plain, cases)?;
    emit(Some((il, ol, &recs)))
}

/// Quantizes and writes the blob.
pub fn export(m: &LmF) -> Result<LmExport> {
    m.validate()?;
    let (v, d, kk) = (m.vocab_size(), m.emb_dim, m.head.k);
    let mut data = Vec::new();
    let mut words: Vec<u32> = vec![0; 18];

    // Embedding rows, one scale each; layer 0 reads them at the largest row scale.
    let (emb_q, emb_s) = quantize_weights(&m.embedding, v);
    let input_scale = emb_s.iter().fold(0f32, |a, &s| a.max(s)) as f64;
    ensure!(input_scale > 0.0, "the embedding is all zeros");
    // Version 2: one shift per per-word array (40 KB less each, 80 KB for
    // the two, at V = 10,000).
    let live: Vec<bool> = emb_q.chunks(d).map(|r| r.iter().any(|&w| w != 0)).collect();
    let emb_rq = requant_shared(&emb_s, &live, 1.0 / input_scale, 1.0, "embedding")?;
    let dec_rq = requant_shared(&emb_s, &live, H_SCALE, LOGIT_ONE, "decoder")?;
    words[8] = push_aligned(&mut data, bytemuck::cast_slice(&emb_q));
    words[9] = push_aligned(&mut data, &i32_bytes(&emb_rq));
    words[10] = push_aligned(&mut data, &i32_bytes(&dec_rq));
    words[11] = push_aligned(
        &mut data,
        &i32_bytes(&bias_q(&m.head.dec_b, LOGIT_ONE, "decoder")?),
    );

    let h = &m.head;
    let (pq, ps) = quantize_weights(&h.proj_w, kk * d);
    let top = m.layers.last().map_or(d, |l| l.hidden);
    let proj_layout = proj_layout(kk * d, top);
    let pq = laid_out(&pq, kk * d, top, proj_layout)?;
    words[7] = proj_layout as u32;
    words[12] = push_aligned(&mut data, bytemuck::cast_slice(&pq));
    words[13] = push_aligned(
        &mut data,
        &i32_bytes(&requant_rows(&ps, H_SCALE, GATE_ONE, "latent")?),
    );
    words[14] = push_aligned(
        &mut data,
        &i32_bytes(&bias_q(&h.proj_b, GATE_ONE, "latent")?),
    );
    if kk > 1 {
        let (q, s) = quantize_weights(&h.prior_w, kk);
        words[15] = push_aligned(&mut data, bytemuck::cast_slice(&q));
        words[16] = push_aligned(
            &mut data,
            &i32_bytes(&requant_rows(&s, H_SCALE, LOGIT_ONE, "prior")?),
        );
        words[17] = push_aligned(
            &mut data,
            &i32_bytes(&bias_q(&h.prior_b, LOGIT_ONE, "prior")?),
        );
    } else {
        words[15..18].copy_from_slice(&[NONE; 3]);
    }

    let mut in_scale = input_scale;
    for (i, l) in m.layers.iter().enumerate() {
        let rows = 4 * l.hidden;
        let (wx, sx) = quantize_weights(&l.w_ih, rows);
        let (wh, sh) = quantize_weights(&l.w_hh, rows);
        let layout = gate_layout(l.input, l.hidden);
        let wx = laid_out(&wx, rows, l.input, layout)?;
        let wh = laid_out(&wh, rows, l.hidden, layout)?;
        let what = format!("layer {i}");
        let rec = [
            l.input as u32,
            l.hidden as u32,
            push_aligned(&mut data, bytemuck::cast_slice(&wx)),
            push_aligned(&mut data, bytemuck::cast_slice(&wh)),
            push_aligned(
                &mut data,
                &i32_bytes(&requant_rows(&sx, in_scale, GATE_ONE, &what)?),
            ),
            push_aligned(
                &mut data,
                &i32_bytes(&requant_rows(&sh, H_SCALE, GATE_ONE, &what)?),
            ),
            push_aligned(&mut data, &i32_bytes(&bias_q(&l.bias, GATE_ONE, &what)?)),
            layout as u32,
        ];
        words.extend_from_slice(&rec);
        in_scale = H_SCALE;
    }
    words[0] = LM_SPEC_VERSION;
    words[1] = v as u32;
    words[2] = d as u32;
    words[3] = m.layers.len() as u32;
    words[4] = match h.kind {
        HeadKind::Softmax => 1,
        HeadKind::Moc => 2,
        HeadKind::Mos => 3,
    };
    words[5] = kk as u32;
    words[6] = match m.level {
        Level::Char => 1,
        Level::Word => 2,
    };
    let lm: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let spec =
        LmSpec::parse(&lm, &data).context("the exporter wrote an LM section the core refuses")?;
    let arena_len = spec.plan().total;
    let vocab = vocab_section(&m.vocab)?;
    ensure!(
        Vocab::parse(&vocab, v).is_some(),
        "the core refuses the token table"
    );
    let repr = ModelRepr {
        family: Family::LanguageModel,
        arena_len: arena_len as u32,
        tensors: &[],
        ops: &[],
        data: &data,
        selftest: None,
        head: None,
        lm: Some(&lm),
        vocab: Some(&vocab),
    };
    let mut blob = vec![0u8; repr.buffer_len()];
    repr.emit(&mut blob)
        .map_err(|e| anyhow::anyhow!("emitting the model: {e}"))?;
    let aligned = AlignedBlob::new(&blob);
    let model = aligned.model()?;
    LanguageModel::new(model).map_err(|e| anyhow::anyhow!("the core refuses the model: {e}"))?;
    Ok(LmExport {
        blob,
        arena_len,
        input_scale,
    })
}

#[cfg(test)]
mod shared_shift_tests {
    use super::*;

    /// Version 2's per-word pairs: the shift is the largest live row's, a
    /// zero row's dummy scale has no say (its multiplier is 0), and every
    /// row's real scale is kept to within one part in 2^20 even at 40×
    /// below the largest (the multiplier keeps 31 − log2 40 ≈ 25 bits).
    #[test]
    fn shared_shift_keeps_precision_and_ignores_zero_rows() {
        let scales = [0.02f32, 0.0005, 1.0, 0.013];
        let live = [true, true, false, true];
        let v = requant_shared(&scales, &live, H_SCALE, LOGIT_ONE, "t").unwrap();
        assert_eq!(v.len(), scales.len() + 1);
        let shift = v[scales.len()];
        let (_, own) = requant_pair(0.02 * H_SCALE * LOGIT_ONE, "t").unwrap();
        assert_eq!(shift, own, "the largest live row's shift");
        assert_eq!(v[2], 0, "the zero row");
        for i in [0, 1, 3] {
            let want = scales[i] as f64 * H_SCALE * LOGIT_ONE;
            let got = v[i] as f64 * 2f64.powi(shift - 31);
            assert!(
                ((got - want) / want).abs() < 1.0 / (1 << 20) as f64,
                "row {i}: {got} vs {want}"
            );
        }
        // All rows zero: multipliers 0, a valid shift.
        let z = requant_shared(&[1.0, 1.0], &[false, false], 1.0, 1.0, "z").unwrap();
        assert_eq!(&z[..2], &[0, 0]);
        assert!(tinyinfer::quant::valid(0, z[2]));
        // A flag per row.
        assert!(requant_shared(&scales, &live[..3], 1.0, 1.0, "t").is_err());
    }
}
