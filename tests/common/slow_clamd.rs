//! A clamd that answers slowly, for the one fault the real daemon cannot be made to show on
//! cue: a scan that takes seconds. It speaks clamd's wire protocol (`z`-commands, INSTREAM
//! chunks, sessions) and detects the EICAR string and upgate's depth marker, so the gateway's
//! canaries pass.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

pub struct SlowClamd {
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

fn read_command(s: &mut impl Read) -> String {
    let mut cmd = Vec::new();
    let mut b = [0u8; 1];
    while s.read(&mut b).unwrap_or(0) == 1 && b[0] != 0 {
        cmd.push(b[0]);
    }
    String::from_utf8_lossy(&cmd).into_owned()
}

fn read_stream(s: &mut impl Read) -> Vec<u8> {
    let mut data = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return data;
        }
        let n = u32::from_be_bytes(len) as usize;
        if n == 0 {
            return data;
        }
        let mut chunk = vec![0u8; n];
        if s.read_exact(&mut chunk).is_err() {
            return data;
        }
        data.extend_from_slice(&chunk);
    }
}

/// The reply to one command, as clamd would give it.
fn answer(cmd: &str, s: &mut impl Read, delay: Duration) -> String {
    let eicar = super::files::eicar().into_bytes();
    match cmd {
        "zPING" => "PONG".to_string(),
        "zVERSION" => "ClamAV 0.0.0-slow/1/test".to_string(),
        "zINSTREAM" => {
            let data = read_stream(s);
            if data.ends_with(upgate_gateway::scanner::DEPTH_MARKER) {
                "stream: Upgate.Canary.ScanDepth.UNOFFICIAL FOUND".to_string()
            } else if data.windows(eicar.len()).any(|w| w == eicar.as_slice()) {
                "stream: Eicar-Test-Signature FOUND".to_string()
            } else {
                std::thread::sleep(delay);
                "stream: OK".to_string()
            }
        }
        other => format!("{other}: UNKNOWN COMMAND"),
    }
}

impl SlowClamd {
    pub fn start(delay: Duration) -> SlowClamd {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("slow-clamd.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut s) = conn else { return };
                std::thread::spawn(move || {
                    let cmd = read_command(&mut s);
                    if cmd != "zIDSESSION" {
                        let reply = answer(&cmd, &mut s, delay);
                        let _ = s.write_all(format!("{reply}\0").as_bytes());
                        return;
                    }
                    // A session: numbered replies until the client goes away.
                    for id in 1.. {
                        let cmd = read_command(&mut s);
                        if cmd.is_empty() {
                            return;
                        }
                        let reply = answer(&cmd, &mut s, delay);
                        if s.write_all(format!("{id}: {reply}\0").as_bytes()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SlowClamd { socket, _dir: dir }
    }
}
