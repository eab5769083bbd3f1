//! What the model families share; nothing in here knows a family.
//!
//! * [`blob`]: model bytes held aligned, atomic writes, Intel HEX images and
//!   flash addresses.
//! * [`data`]: where the data sets live (flags, environment, defaults), the
//!   IDX reader, and Fashion-MNIST (the classifier's data set and the density
//!   model's anomalies).
//! * [`calibrate`]: activation ranges over calibration images (one
//!   [`calibrate::calibrate`] for every family), the int8 quantization helpers,
//!   and buffer planning for chains and DAGs.
//! * [`checkpoint`]: the family tag every checkpoint carries.
//! * [`trainer`]: trainer scaffolding: default flags, thread pools, the
//!   warm-up + cosine schedule, progress reporting, burn tensor helpers.
//! * [`metrics`]: accuracy, confusion, calibration metrics, AUROC.
//! * [`parallel`]: running a blob through the core over many inputs, one
//!   arena per thread.
//! * [`inspect`]: what `tinyinfer inspect` reports about a graph model.

pub mod blob;
pub mod calibrate;
pub mod checkpoint;
pub mod data;
pub mod inspect;
pub mod metrics;
pub mod parallel;
pub mod slots;
pub mod trainer;
