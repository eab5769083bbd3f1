//! Memory laid out by the linker script: the MODEL partition, the static
//! buffers (each board declares its own [`Buffers`]), the painted stack. The firmware's only unsafe code lives here,
//! each use behind a safe function with a `// SAFETY:` note.
//!
//! Symbols used (from `memory-<board>.x` and cortex-m-rt's `link.x`):
//!
//! | symbol | meaning |
//! | --- | --- |
//! | `__model_start`, `__model_end` | the MODEL flash partition |
//! | `__sdata`, `__euninit` | the statics (`.data`, `.bss`, `.uninit`, in that order) |
//! | `_stack_end`, `_stack_start` | the stack region, bottom and top (the initial stack pointer) |
//!
//! On RISC-V (riscv-rt's `link.x`) the stack region's bottom is `__estack`;
//! the other symbols have the same names.
//!
//! The Arm firmware links through flip-link: the stack region is the bottom of
//! RAM and the statics sit above it, so an overflow runs off the start of
//! RAM and faults instead of writing into the arena. Without flip-link (and
//! on RISC-V, which flip-link does not support) the stack region is the top
//! of RAM, above the statics; the measurements hold either way.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::ptr;
use core::sync::atomic::{AtomicBool, Ordering};

extern "C" {
    static __model_start: u8;
    static __model_end: u8;
    static __sdata: u8;
    static __euninit: u8;
    static _stack_start: u8;
    #[cfg(target_arch = "arm")]
    static _stack_end: u8;
    #[cfg(target_arch = "riscv32")]
    #[link_name = "__estack"]
    static _stack_end: u8;
}

/// The value cortex-m-rt paints the stack region with before `main` (feature `paint-stack`).
#[cfg(target_arch = "arm")]
pub const STACK_PAINT: u32 = cortex_m_rt::STACK_PAINT_VALUE;
/// The value [`paint_stack`] paints the stack region with (riscv-rt paints nothing).
#[cfg(target_arch = "riscv32")]
pub const STACK_PAINT: u32 = 0xcccc_cccc;

/// Paints the stack region below this function's own frame with
/// [`STACK_PAINT`], for [`ram_use`]'s high-water mark: riscv-rt, unlike
/// cortex-m-rt's `paint-stack`, does not. Call it first thing in `main`:
/// everything above the painted part is in use by then, and so counted.
#[cfg(target_arch = "riscv32")]
#[inline(never)]
pub fn paint_stack() {
    let sp: usize;
    // SAFETY: reads the stack pointer into a register; touches no memory.
    unsafe { core::arch::asm!("mv {0}, sp", out(reg) sp, options(nomem, nostack)) };
    let mut at = (addr(ptr::addr_of!(_stack_end)) + 3) & !3;
    // Stop short of the frame of this function: the loop runs in registers.
    let end = sp.saturating_sub(16) & !3;
    while at < end {
        // SAFETY: [_stack_end, sp) is the stack region below the stack
        // pointer: mapped RAM that belongs to no Rust object (no interrupt
        // is enabled to use it), so writing it races with nothing.
        unsafe { ptr::write_volatile(ptr::with_exposed_provenance_mut::<u32>(at), STACK_PAINT) };
        at += 4;
    }
}

fn addr(sym: *const u8) -> usize {
    sym as usize
}

/// The MODEL partition, whole: the core checks it and ignores bytes past the
/// model's declared length.
pub fn model_partition() -> &'static [u8] {
    // Taking the address of a linker symbol reads nothing.
    let (start, end) = (
        addr(ptr::addr_of!(__model_start)),
        addr(ptr::addr_of!(__model_end)),
    );
    let len = end.saturating_sub(start);
    // SAFETY: the memory map reserves [start, end) as the MODEL region: the
    // linker places nothing of the firmware there and no code writes it, so
    // it is readable, immutable memory (flash on a board, RAM loaded by QEMU
    // before reset) for the whole run. It is not a Rust allocation, so the
    // pointer takes exposed provenance from its address.
    unsafe { core::slice::from_raw_parts(ptr::with_exposed_provenance::<u8>(start), len) }
}

/// Takes `flag` if nobody has: true once, false afterwards.
///
/// Armv6-M (Cortex-M0/M0+) has no atomic read-modify-write
/// (`AtomicBool::swap`), so the load and the store run with interrupts off:
/// on these single-core chips nothing else can run between them.
/// RV32IMC (no A extension) has none either: the same, with the hart's
/// interrupts off.
fn take_once(flag: &AtomicBool) -> bool {
    let take = || {
        if flag.load(Ordering::Relaxed) {
            false
        } else {
            flag.store(true, Ordering::Relaxed);
            true
        }
    };
    #[cfg(target_arch = "arm")]
    return cortex_m::interrupt::free(|_| take());
    #[cfg(target_arch = "riscv32")]
    return riscv::interrupt::free(take);
}

#[repr(C, align(4))]
struct Inner<const A: usize, const I: usize> {
    arena: [u8; A],
    input: [u8; I],
}

/// A board's static arena (`A` bytes, 4-byte aligned) and evaluation input
/// buffer (`I` bytes), in `.bss`. A board file declares one:
///
/// ```ignore
/// static BUFFERS: Buffers<{ arena_bytes(25 * 1024) }, MAX_INPUT_BYTES> = Buffers::new();
/// ```
///
/// and the link fails if they leave the stack too little of the board's
/// RAM (`build.rs`).
pub struct Buffers<const A: usize, const I: usize> {
    inner: UnsafeCell<Inner<A, I>>,
    taken: AtomicBool,
}

// SAFETY: the buffers are reachable only through `take`, which hands out
// the one mutable reference once (`take_once`), so sharing the static
// between contexts shares no access.
unsafe impl<const A: usize, const I: usize> Sync for Buffers<A, I> {}

impl<const A: usize, const I: usize> Buffers<A, I> {
    /// Zeroed buffers (placed in `.bss`).
    #[allow(clippy::new_without_default)] // a static needs a const constructor
    pub const fn new() -> Self {
        Buffers {
            inner: UnsafeCell::new(Inner {
                arena: [0; A],
                input: [0; I],
            }),
            taken: AtomicBool::new(false),
        }
    }

    /// The arena and the input buffer: `Some` once, `None` afterwards.
    // The once-flag makes the mutable references unique: the shared
    // `&'static self` hands out no other access to the buffers.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<(&'static mut [u8], &'static mut [u8])> {
        if !take_once(&self.taken) {
            return None;
        }
        // SAFETY: `take_once` lets exactly one caller through, so this is the
        // only reference to the buffers ever made.
        let b = unsafe { &mut *self.inner.get() };
        Some((&mut b.arena, &mut b.input))
    }
}

/// Bytes of [`take_scratch`]'s buffer.
pub const SCRATCH_BYTES: usize = 128 * 1024;

#[repr(C, align(4))]
struct Scratch([u8; SCRATCH_BYTES]);

static mut SCRATCH: Scratch = Scratch([0; SCRATCH_BYTES]);
static SCRATCH_TAKEN: AtomicBool = AtomicBool::new(false);

/// A 4-byte aligned buffer of [`SCRATCH_BYTES`] for the `kernel-check` app
/// (test tensors): `Some` once, `None` afterwards. Apps that never call it
/// do not link it (the linker drops the unused section).
pub fn take_scratch() -> Option<&'static mut [u8]> {
    if !take_once(&SCRATCH_TAKEN) {
        return None;
    }
    // SAFETY: the flag above lets exactly one caller through, so this is the
    // only reference to SCRATCH ever made.
    let b = unsafe { &mut *ptr::addr_of_mut!(SCRATCH) };
    Some(&mut b.0)
}

/// RAM use, measured.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct RamUse {
    /// Bytes of statics (`.data` + `.bss` + `.uninit`), the arena included.
    pub static_bytes: u32,
    /// Bytes of the stack region.
    pub stack_region_bytes: u32,
    /// Deepest stack use since reset: painted words that were overwritten.
    pub stack_high_water_bytes: u32,
}

/// Measures RAM use: statics from the linker symbols, the stack's high-water
/// mark by finding the lowest word no longer holding [`STACK_PAINT`].
pub fn ram_use() -> RamUse {
    // Taking the address of a linker symbol reads nothing.
    let (statics, statics_end, bottom, top) = (
        addr(ptr::addr_of!(__sdata)),
        addr(ptr::addr_of!(__euninit)),
        addr(ptr::addr_of!(_stack_end)),
        addr(ptr::addr_of!(_stack_start)),
    );
    let mut at = (bottom + 3) & !3;
    while at < top {
        // SAFETY: [bottom, top) is the stack region of RAM: mapped, readable
        // and 4-byte aligned; the words below the stack pointer belong to no
        // Rust object, so a volatile read of them races with nothing.
        let w = unsafe { ptr::read_volatile(ptr::with_exposed_provenance::<u32>(at)) };
        if w != STACK_PAINT {
            break;
        }
        at += 4;
    }
    RamUse {
        static_bytes: statics_end.saturating_sub(statics) as u32,
        stack_region_bytes: (top - bottom) as u32,
        stack_high_water_bytes: (top - at) as u32,
    }
}

/// The device interrupts of the vector table with feature `few-vectors`
/// (cortex-m-rt's `device` feature, which leaves this table to the app):
/// 48, the nRF52840's count, every one cortex-m-rt's `DefaultHandler`.
/// Nothing enables an interrupt (the NVIC keeps its reset state), so the
/// core never reads them; cortex-m-rt's own table has 240 entries (480 on
/// Armv8-M). Armv6-M has at most 32, cortex-m-rt's table there already.
#[cfg(all(feature = "few-vectors", not(tinyinfer_armv6m)))]
pub const DEVICE_INTERRUPTS: usize = 48;
/// Armv6-M's limit (and cortex-m-rt's count there): the feature changes nothing.
#[cfg(all(feature = "few-vectors", tinyinfer_armv6m))]
pub const DEVICE_INTERRUPTS: usize = 32;

#[cfg(feature = "few-vectors")]
extern "C" {
    fn DefaultHandler();
}

/// The table itself, where cortex-m-rt's `link.x` puts it (after the
/// exceptions), under the name it expects.
#[cfg(feature = "few-vectors")]
#[link_section = ".vector_table.interrupts"]
#[no_mangle]
#[used]
pub static __INTERRUPTS: [unsafe extern "C" fn(); DEVICE_INTERRUPTS] =
    [DefaultHandler; DEVICE_INTERRUPTS];
