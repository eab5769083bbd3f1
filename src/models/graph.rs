//! Runs a checked op list over the caller's arena.

use core::ops::Range;

use crate::format::{ConvLayout, Model, OpKind, OpRepr};
use crate::kernels::{driver as k, Mask};
use crate::{Error, Result};

/// Hooks called around every op: per-layer benchmarks and tracing.
pub trait Observer {
    /// Called before op `index` runs.
    fn before(&mut self, _index: usize, _op: &OpRepr) {}
    /// Called after op `index` ran.
    fn after(&mut self, _index: usize, _op: &OpRepr) {}
}

impl Observer for () {}

/// Borrows `a` for reading and `b` for writing; None if they overlap or fall outside.
fn split_pair(arena: &mut [u8], a: Range<usize>, b: Range<usize>) -> Option<(&[u8], &mut [u8])> {
    if a.end <= b.start {
        let (lo, hi) = arena.split_at_mut(b.start.min(arena.len()));
        Some((lo.get(a)?, hi.get_mut(..b.len())?))
    } else if b.end <= a.start {
        let (lo, hi) = arena.split_at_mut(a.start.min(arena.len()));
        Some((hi.get(..a.len())?, lo.get_mut(b)?))
    } else {
        None
    }
}

/// Borrows `a` and `b` for reading and `o` for writing; None if `o` overlaps
/// either (the reads may overlap each other) or anything falls outside.
#[cfg(feature = "density")]
pub(crate) fn split_three(
    arena: &mut [u8],
    a: Range<usize>,
    b: Range<usize>,
    o: Range<usize>,
) -> Option<(&[u8], &[u8], &mut [u8])> {
    if o.start > o.end || o.end > arena.len() {
        return None;
    }
    let (lo, rest) = arena.split_at_mut(o.start);
    let (out, hi) = rest.split_at_mut(o.end - o.start);
    let (lo, hi): (&[u8], &[u8]) = (lo, hi);
    let pick = |r: Range<usize>| {
        if r.end <= o.start {
            lo.get(r)
        } else if r.start >= o.end {
            hi.get(r.start - o.end..r.end - o.end)
        } else {
            None
        }
    };
    Some((pick(a)?, pick(b)?, out))
}

/// Checks that `arena` holds at least what the model needs.
pub(crate) fn check_arena(model: &Model<'_>, arena: &[u8]) -> Result<()> {
    if arena.len() < model.arena_len() {
        return Err(Error::ArenaTooSmall {
            needed: model.arena_len() as u32,
            got: arena.len() as u32,
        });
    }
    Ok(())
}

/// Runs every op; the input tensor must already be in the arena.
pub(crate) fn run(model: &Model<'_>, arena: &mut [u8], obs: &mut impl Observer) -> Result<()> {
    check_arena(model, arena)?;
    for i in 0..model.op_count() {
        let op = model.op(i).ok_or(Error::BadOp(i as u16))?;
        obs.before(i, &op);
        run_op(model, &op, arena).map_err(|_| Error::BadOp(i as u16))?;
        obs.after(i, &op);
    }
    Ok(())
}

fn run_op(model: &Model<'_>, op: &OpRepr, arena: &mut [u8]) -> Result<()> {
    let bad = Error::BadOp(0);
    let parts = model.parts(op);
    let (ti, to) = (parts.input, parts.output);
    if ti.c == 0 || to.c == 0 {
        return Err(bad);
    }
    if op.kind == OpKind::Add {
        #[cfg(feature = "density")]
        return run_add(model, op, arena);
        // Built without the density family's ops (feature `density`): the
        // drivers refuse such models before they run (`check_ops`).
        #[cfg(not(feature = "density"))]
        return Err(bad);
    }
    let (input, output) =
        split_pair(arena, ti.arena_range(), to.arena_range()).ok_or(Error::BadGraph)?;
    let input: &[i8] = bytemuck::cast_slice(input);
    let output: &mut [i8] = bytemuck::cast_slice_mut(output);
    let (mult, shift) = (parts.multiplier, parts.shift);
    match op.kind {
        OpKind::Conv2d => {
            let p = k::ConvParams {
                in_h: ti.h as usize,
                in_w: ti.w as usize,
                in_c: ti.c as usize,
                out_h: to.h as usize,
                out_w: to.w as usize,
                out_c: to.c as usize,
                k: op.kernel as usize,
                stride: op.stride as usize,
                pad: op.pad as usize,
                in_zp: ti.zero_point,
                out_zp: to.zero_point,
                act_min: op.act_min,
                act_max: op.act_max,
            };
            match op.mask() {
                #[cfg(feature = "density")]
                Some(m @ (Mask::A | Mask::B)) if p.k > 1 => {
                    k::conv2d_masked(&p, m, input, parts.weights, parts.bias, mult, shift, output)
                }
                // Without feature `density`, `check_ops` refused masked convs.
                #[cfg(not(feature = "density"))]
                Some(Mask::A | Mask::B) if p.k > 1 => Err(bad),
                // With feature `compact`, `check_ops` refused pairs convs.
                #[cfg(not(feature = "compact"))]
                _ if op.conv_layout() == Some(ConvLayout::Pairs) => {
                    k::conv2d_pairs(&p, input, parts.pairs, parts.bias, mult, shift, output)
                }
                #[cfg(feature = "compact")]
                _ if op.conv_layout() == Some(ConvLayout::Pairs) => Err(bad),
                _ => k::conv2d(&p, input, parts.weights, parts.bias, mult, shift, output),
            }
        }
        OpKind::Add => Err(bad),
        OpKind::FullyConnected => {
            let p = k::FcParams {
                in_len: ti.len() as usize,
                out_len: to.c as usize,
                in_zp: ti.zero_point,
                out_zp: to.zero_point,
                act_min: op.act_min,
                act_max: op.act_max,
            };
            k::fully_connected(&p, input, parts.weights, parts.bias, mult, shift, output)
        }
        OpKind::MaxPool2x2 => {
            let p = k::PoolParams {
                in_h: ti.h as usize,
                in_w: ti.w as usize,
                c: ti.c as usize,
            };
            k::max_pool_2x2(&p, input, output)
        }
        OpKind::GlobalAvgPool => {
            let p = k::GapParams {
                in_h: ti.h as usize,
                in_w: ti.w as usize,
                c: ti.c as usize,
                in_zp: ti.zero_point,
                out_zp: to.zero_point,
                multiplier: *mult.first().ok_or(bad)?,
                shift: *shift.first().ok_or(bad)?,
                act_min: op.act_min,
                act_max: op.act_max,
            };
            k::global_avg_pool(&p, input, output)
        }
    }
}

/// Checks that [`run`] can run every op of `model` in this build, so that a
/// model with one it cannot run is refused here, `Error::BadOp` naming the
/// first, rather than failing half-way through an inference: without
/// feature `density`, no `Add` op and no masked conv (of more than one tap;
/// a 1×1 conv's mask changes nothing); with feature `compact` (the
/// flash-minimal build), no conv in the pairs layout. Otherwise every
/// checked op runs.
pub(crate) fn check_ops(model: &Model<'_>) -> Result<()> {
    for i in 0..model.op_count() {
        let op = model.op(i).ok_or(Error::BadOp(i as u16))?;
        let conv = op.kind == OpKind::Conv2d;
        let masked = conv && matches!(op.mask(), Some(Mask::A | Mask::B)) && op.kernel > 1;
        let density_op = op.kind == OpKind::Add || masked;
        let pairs = conv && op.conv_layout() == Some(ConvLayout::Pairs);
        if (cfg!(not(feature = "density")) && density_op) || (cfg!(feature = "compact") && pairs) {
            return Err(Error::BadOp(i as u16));
        }
    }
    Ok(())
}

/// The add kernel's parameters for an `Add` op (checked by the model).
#[cfg(feature = "density")]
pub(crate) fn add_params(model: &Model<'_>, op: &OpRepr) -> Option<k::AddParams> {
    let parts = model.parts(op);
    let tb = model.tensor(op.input2() as usize)?;
    let (ta, to) = (parts.input, parts.output);
    let (m, s) = (parts.multiplier, parts.shift);
    Some(k::AddParams {
        a_zp: ta.zero_point,
        b_zp: tb.zero_point,
        out_zp: to.zero_point,
        a_mult: *m.first()?,
        a_shift: *s.first()?,
        b_mult: *m.get(1)?,
        b_shift: *s.get(1)?,
        out_mult: *m.get(2)?,
        out_shift: *s.get(2)?,
        act_min: op.act_min,
        act_max: op.act_max,
    })
}

#[cfg(feature = "density")]
fn run_add(model: &Model<'_>, op: &OpRepr, arena: &mut [u8]) -> Result<()> {
    let bad = Error::BadOp(0);
    let p = add_params(model, op).ok_or(bad)?;
    let ta = model.tensor(op.input as usize).ok_or(bad)?;
    let tb = model.tensor(op.input2() as usize).ok_or(bad)?;
    let to = model.tensor(op.output as usize).ok_or(bad)?;
    let (a, b, out) = split_three(arena, ta.arena_range(), tb.arena_range(), to.arena_range())
        .ok_or(Error::BadGraph)?;
    k::add(
        &p,
        bytemuck::cast_slice(a),
        bytemuck::cast_slice(b),
        bytemuck::cast_slice_mut(out),
    )
}
