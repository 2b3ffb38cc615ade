//! A helper process for the transport stories: emits events over the HTTP
//! transport, says `EMITTED`, then waits to be killed.
//!
//! Usage: emitter <spool-dir> <url> <runs> <events-per-run>

use std::io::Write;
use std::time::Duration;

use provenance_core::transport::{HttpOptions, HttpTransport, Transport};
use provenance_tests::numbered_event;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: emitter <spool-dir> <url> <runs> <events-per-run>");
        std::process::exit(2);
    }
    let mut options = HttpOptions::new(args[2].clone(), args[1].clone().into());
    options.timeout = Duration::from_millis(500);
    let transport = HttpTransport::start(options).expect("start the transport");
    let runs: usize = args[3].parse().expect("runs");
    let per_run: usize = args[4].parse().expect("events per run");
    for i in 0..per_run {
        for r in 0..runs {
            transport
                .emit(&numbered_event("killed", r, i))
                .expect("emit");
        }
    }
    println!("EMITTED");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(120));
}
