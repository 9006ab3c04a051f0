//! Time from start to first prompt of an interactive program in a pseudo
//! terminal: `virtscript repl` against `virsh -c test:///default` (benches/repl.sh).
//!
//!     cargo run --release --example baseline_repl -- RUNS PROMPT -- COMMAND ARGS...
//!
//! Prints `min median mean` in milliseconds. The terminal answers cursor
//! position queries (ESC [6n) like a real one, so line editors do not wait.
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let split = args.iter().position(|a| a == "--");
    let (Some(split), Some(runs), Some(prompt)) = (split, args.first(), args.get(1)) else {
        eprintln!("usage: baseline_repl RUNS PROMPT -- COMMAND ARGS...");
        std::process::exit(2);
    };
    let runs: usize = runs.parse().expect("RUNS is a number");
    let command = &args[split + 1..];
    let mut times: Vec<f64> = (0..runs)
        .map(|_| time_to_prompt(command, prompt.as_bytes()).as_secs_f64() * 1000.0)
        .collect();
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!("{:.1} {:.1} {:.1}", times[0], times[times.len() / 2], mean);
}

fn time_to_prompt(command: &[String], prompt: &[u8]) -> Duration {
    let (mut master, slave) = open_pty();
    let mut child = Command::new(&command[0]);
    child
        .args(&command[1..])
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave))
        .env("TERM", "xterm");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        child.pre_exec(|| {
            libc::setsid();
            libc::ioctl(0, libc::TIOCSCTTY as _, 0);
            Ok(())
        });
    }
    let started = Instant::now();
    let mut child = child.spawn().expect("command starts");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let elapsed = loop {
        let n = match master.read(&mut buf) {
            Ok(0) | Err(_) => panic!(
                "{} exited before its prompt: {}",
                command[0],
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => n,
        };
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(4).any(|w| w == b"\x1b[6n") {
            let _ = master.write_all(b"\x1b[1;1R");
            let pos = seen.windows(4).position(|w| w == b"\x1b[6n").unwrap();
            seen.drain(..pos + 4);
        }
        if seen.windows(prompt.len()).any(|w| w == prompt) {
            break started.elapsed();
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

fn open_pty() -> (std::fs::File, OwnedFd) {
    let mut master = 0;
    let mut slave = 0;
    let size = libc::winsize {
        ws_row: 50,
        ws_col: 160,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors we then own.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty failed");
    // SAFETY: fresh descriptors from openpty, owned from here on.
    unsafe {
        (
            std::fs::File::from_raw_fd(master),
            OwnedFd::from_raw_fd(slave),
        )
    }
}
