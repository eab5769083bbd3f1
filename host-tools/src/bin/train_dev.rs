// Temporary dev entry point for the train module (to be deleted).
use clap::Parser;
use tinyinfer_tools::{data, train};
#[derive(Parser)]
struct Cli {
    /// Only evaluate this checkpoint (float and folded) on the test set.
    #[arg(long)]
    check: Option<std::path::PathBuf>,
    #[command(flatten)]
    args: train::TrainArgs,
}
fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(ck) = cli.check {
        let test = data::load_fashion_mnist(&data::fashion_mnist_dir(None), data::Split::Test)?;
        let t = std::time::Instant::now();
        let logits = train::float_logits(&ck, &test.images)?;
        let (acc, nll, ece) = train::calibration_metrics(&logits, &test.labels);
        println!(
            "float checkpoint: acc {:.4} nll {:.4} ece {:.4} ({:.1} s)",
            acc,
            nll,
            ece,
            t.elapsed().as_secs_f64()
        );
        let net = train::load_folded(&ck)?;
        let t = std::time::Instant::now();
        let mut fl = Vec::new();
        let mut maxd = 0f32;
        for i in 0..test.len() {
            let l = net.logits(test.image(i));
            for (a, b) in l.iter().zip(&logits[i * 10..i * 10 + 10]) {
                maxd = maxd.max((a - b).abs());
            }
            fl.extend(l);
        }
        let (acc, nll, ece) = train::calibration_metrics(&fl, &test.labels);
        println!("folded: acc {:.4} nll {:.4} ece {:.4}; max |logit diff| vs burn {:.2e} ({:.1} s); params {}", acc, nll, ece, maxd, t.elapsed().as_secs_f64(), net.params());
        return Ok(());
    }
    let s = train::run(&cli.args)?;
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(())
}
