//! The record stage: every decision, allowed or denied, becomes a DSSE-signed in-toto statement
//! appended to a hash-chained log ([`attestlog`]), extended into a TPM PCR and quoted ([`tpm`]).

pub mod attestlog;
pub mod stage;
pub mod tpm;
