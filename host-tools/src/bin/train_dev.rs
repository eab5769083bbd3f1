// Temporary dev entry point for the train module (to be deleted).
use clap::Parser;
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: tinyinfer_tools::train::TrainArgs,
}
fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let s = tinyinfer_tools::train::run(&cli.args)?;
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(())
}
