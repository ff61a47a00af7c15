//! The pure parts of staff sign-in: password hashing and TOTP codes. The operations that
//! use them (users, sessions, sign-in links) are in `service/users.rs`; the pages in
//! `console`.

pub mod password;
pub mod totp;
