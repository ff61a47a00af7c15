//! Shared parts of the end-to-end tests: real processes on loopback.
#![allow(dead_code)]

pub mod browser;
pub mod clamd;
pub mod files;
pub mod garage;
pub mod logs;
pub mod loopback;
pub mod poll;
pub mod raw;
pub mod scene;
pub mod slow_clamd;
pub mod split;
pub mod sse;
pub mod twilio;
pub mod upgate;
pub mod vonage;
