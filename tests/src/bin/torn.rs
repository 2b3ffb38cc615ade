//! A helper process for the transport stories: a write that fails part way
//! (a full disk). It caps the size of the files it may write
//! (`RLIMIT_FSIZE`), emits events through the file or the HTTP transport
//! until one is refused, lifts the cap, emits two more, and prints how many
//! were accepted.
//!
//! Usage: torn file <path> | torn http <spool-dir> <url>

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use provenance_core::transport::{FileTransport, HttpOptions, HttpTransport, Transport};
use provenance_tests::numbered_event;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let transport: Box<dyn Transport> = match args.get(1).map(String::as_str) {
        Some("file") if args.len() == 3 => {
            Box::new(FileTransport::open(args[2].as_ref(), true).expect("open"))
        }
        Some("http") if args.len() == 4 => {
            let mut options = HttpOptions::new(args[3].clone(), args[2].clone().into());
            options.drop_wait = Duration::from_millis(100);
            Box::new(HttpTransport::start(options).expect("start"))
        }
        _ => {
            eprintln!("usage: torn file <path> | torn http <spool-dir> <url>");
            std::process::exit(2);
        }
    };
    // Past the cap, write(2) writes what fits and then fails with EFBIG
    // (rather than the process being killed by SIGXFSZ).
    signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        Arc::new(AtomicBool::new(false)),
    )
    .expect("catch SIGXFSZ");
    let (soft, hard) = getrlimit(Resource::RLIMIT_FSIZE).expect("getrlimit");
    // An odd size, so that the cap falls inside an event's line.
    setrlimit(Resource::RLIMIT_FSIZE, 5_000, hard).expect("setrlimit");
    let mut accepted = 0;
    for i in 0.. {
        if transport.emit(&numbered_event("torn", 0, i)).is_err() {
            break;
        }
        accepted += 1;
    }
    setrlimit(Resource::RLIMIT_FSIZE, soft, hard).expect("lift the cap");
    for i in 0..2 {
        transport
            .emit(&numbered_event("torn", 1, i))
            .expect("emit after the cap");
        accepted += 1;
    }
    println!("{accepted}");
}
