//! Running a blob through the core over many inputs on the host: one arena
//! per thread, outputs in input order.

use anyhow::Result;

/// Runs `f(arena, image, out)` over every `px`-byte image in parallel, one
/// arena of `arena_len` bytes per thread, `out_len` outputs per image.
pub fn par_over_images<T: Default + Clone + Send>(
    images: &[u8],
    px: usize,
    out_len: usize,
    arena_len: usize,
    f: impl Fn(&mut [u8], &[u8], &mut [T]) -> Result<()> + Sync,
) -> Result<Vec<T>> {
    anyhow::ensure!(
        px > 0 && images.len().is_multiple_of(px),
        "images are not a whole number of {px}-pixel inputs"
    );
    let n = images.len() / px;
    let mut out = vec![T::default(); n * out_len];
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.max(1));
    let per = n.div_ceil(threads.max(1)).max(1);
    let f = &f;
    std::thread::scope(|s| -> Result<()> {
        let hs: Vec<_> = images
            .chunks(per * px)
            .zip(out.chunks_mut((per * out_len).max(1)))
            .map(|(imgs, o)| {
                s.spawn(move || -> Result<()> {
                    let mut arena = vec![0u8; arena_len];
                    for (img, v) in imgs.chunks(px).zip(o.chunks_mut(out_len.max(1))) {
                        f(&mut arena, img, v)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in hs {
            h.join()
                .map_err(|_| anyhow::anyhow!("evaluation thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(out)
}
