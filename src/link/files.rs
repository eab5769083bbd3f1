//! The request and response records the host and a device exchange (on
//! QEMU: semihosting files in QEMU's working directory). Each record is a
//! 4-byte magic and little-endian words, written by `emit` and read by
//! `parse` on both sides, so their layout lives here only.
//!
//! | record | magic | words after the magic | then |
//! | --- | --- | --- | --- |
//! | [`EvalRequest`] | `TIEI` | count u32, input length u32, reserved u32 | `count` × (input bytes, label u8) |
//! | [`EvalResponse`] | `TIEO` | count u32, classes u32, reserved u32 | `count` × `classes` int8 scores |
//! | [`SampleRequest`] | `TISR` | seed u64, images u32, full-recomputation pixels u32 | — |
//! | [`LmRequest`] | `TILM` | seed u64, tokens u32, prompt length u32 | the prompt's bytes |

fn word(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn put(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A record: magic, then three fields of `u32` words (a `u64` takes two, low first).
macro_rules! record {
    ($(#[$m:meta])* $name:ident, $magic:literal, $len:literal, [$a:ident: $ta:ty, $b:ident: $tb:ty, $c:ident: $tc:ty]) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            #[allow(missing_docs)]
            pub $a: $ta,
            #[allow(missing_docs)]
            pub $b: $tb,
            #[allow(missing_docs)]
            pub $c: $tc,
        }

        impl $name {
            /// The record's first four bytes.
            pub const MAGIC: [u8; 4] = *$magic;
            /// Bytes of the record.
            pub const LEN: usize = $len;
        }
    };
}

record!(
    /// Evaluation images offered to a classifier: `count` images of
    /// `input_len` bytes, each followed by its label.
    EvalRequest, b"TIEI", 16, [count: u32, input_len: u32, reserved: u32]
);
record!(
    /// The device's answer to an [`EvalRequest`]: `count` × `classes` scores follow.
    EvalResponse, b"TIEO", 16, [count: u32, classes: u32, reserved: u32]
);
record!(
    /// Density models: sample `count` images from seeds `seed, seed + 1, …`,
    /// and time `full_pixels` pixels of sampling by full recomputation.
    SampleRequest, b"TISR", 20, [seed: u64, count: u32, full_pixels: u32]
);
record!(
    /// Language models: generate `tokens` tokens with `seed` after the
    /// `prompt_len` bytes of prompt that follow the record.
    LmRequest, b"TILM", 20, [seed: u64, tokens: u32, prompt_len: u32]
);

impl EvalRequest {
    /// Writes the record into `b[..16]`.
    pub fn emit(&self, b: &mut [u8; 16]) {
        b[..4].copy_from_slice(&Self::MAGIC);
        put(b, 4, self.count);
        put(b, 8, self.input_len);
        put(b, 12, 0);
    }

    /// Reads the record; None without its magic or with a reserved word set.
    pub fn parse(b: &[u8]) -> Option<Self> {
        (b.get(..4)? == Self::MAGIC && b.len() >= Self::LEN && word(b, 12) == 0).then(|| Self {
            count: word(b, 4),
            input_len: word(b, 8),
            reserved: 0,
        })
    }
}

impl EvalResponse {
    /// Writes the record into `b[..16]`.
    pub fn emit(&self, b: &mut [u8; 16]) {
        b[..4].copy_from_slice(&Self::MAGIC);
        put(b, 4, self.count);
        put(b, 8, self.classes);
        put(b, 12, 0);
    }

    /// Reads the record; None without its magic.
    pub fn parse(b: &[u8]) -> Option<Self> {
        (b.get(..4)? == Self::MAGIC && b.len() >= Self::LEN).then(|| Self {
            count: word(b, 4),
            classes: word(b, 8),
            reserved: 0,
        })
    }
}

fn seed_at(b: &[u8]) -> u64 {
    u64::from(word(b, 4)) | (u64::from(word(b, 8)) << 32)
}

fn put_seed(b: &mut [u8], seed: u64) {
    put(b, 4, seed as u32);
    put(b, 8, (seed >> 32) as u32);
}

impl SampleRequest {
    /// Writes the record (20 bytes).
    pub fn emit(&self, b: &mut [u8; 20]) {
        b[..4].copy_from_slice(&Self::MAGIC);
        put_seed(b, self.seed);
        put(b, 12, self.count);
        put(b, 16, self.full_pixels);
    }

    /// Reads the record; None without its magic or when short.
    pub fn parse(b: &[u8]) -> Option<Self> {
        (b.get(..4)? == Self::MAGIC && b.len() >= Self::LEN).then(|| Self {
            seed: seed_at(b),
            count: word(b, 12),
            full_pixels: word(b, 16),
        })
    }
}

impl LmRequest {
    /// Writes the record (20 bytes; the prompt follows it).
    pub fn emit(&self, b: &mut [u8; 20]) {
        b[..4].copy_from_slice(&Self::MAGIC);
        put_seed(b, self.seed);
        put(b, 12, self.tokens);
        put(b, 16, self.prompt_len);
    }

    /// Reads the record; None without its magic or when short.
    pub fn parse(b: &[u8]) -> Option<Self> {
        (b.get(..4)? == Self::MAGIC && b.len() >= Self::LEN).then(|| Self {
            seed: seed_at(b),
            tokens: word(b, 12),
            prompt_len: word(b, 16),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// emit → parse is the identity, a wrong magic or a short record is
    /// refused: what the host writes is what the device reads.
    #[test]
    fn records_round_trip() {
        let e = EvalRequest {
            count: 7,
            input_len: 784,
            reserved: 0,
        };
        let mut b = [0u8; 16];
        e.emit(&mut b);
        assert_eq!(EvalRequest::parse(&b), Some(e));
        assert_eq!(EvalResponse::parse(&b), None);
        let r = EvalResponse {
            count: 7,
            classes: 10,
            reserved: 0,
        };
        r.emit(&mut b);
        assert_eq!(EvalResponse::parse(&b), Some(r));
        assert_eq!(EvalResponse::parse(&b[..15]), None);
        let mut b = [0u8; 20];
        let s = SampleRequest {
            seed: u64::MAX - 3,
            count: 4,
            full_pixels: 28,
        };
        s.emit(&mut b);
        assert_eq!(SampleRequest::parse(&b), Some(s));
        assert_eq!(LmRequest::parse(&b), None);
        let l = LmRequest {
            seed: 1 << 40,
            tokens: 300,
            prompt_len: 6,
        };
        l.emit(&mut b);
        assert_eq!(LmRequest::parse(&b), Some(l));
        assert_eq!(LmRequest::parse(&b[..19]), None);
    }
}
