//! The device report's reader (`tinyinfer::link::report`) on arbitrary
//! bytes: it never panics, and every record it accepts re-encodes to the
//! very bytes it was read from (one encoding per record, so the host reads
//! nothing the device could not have sent).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tinyinfer::link::report::{Reader, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    for rec in Reader::new(data) {
        let Ok(rec) = rec else { break };
        let mut b = [0u8; MAX_FRAME];
        let n = rec.emit(&mut b).expect("an accepted record re-encodes");
        assert_eq!(&b[..n], &data[at..at + n], "record at byte {at}");
        at += n;
    }
});
