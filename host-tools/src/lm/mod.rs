//! Language models (LSTM with softmax, Mixture-of-Contexts or Mixture-of-Softmaxes heads).

#[cfg(test)]
mod core_tests;
pub mod float;
pub mod quantize;
pub mod rank;
pub mod run;
