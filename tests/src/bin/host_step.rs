//! A helper process for the recorder stories: records one step of this
//! process itself, with no command given (so its own arguments are recorded),
//! to the events file named by its first argument.
//!
//! Usage: host_step <events-file> [any arguments, UTF-8 or not]

use std::path::Path;

use provenance_core::recorder::Recorder;
use provenance_core::transport::FileTransport;

fn main() {
    let Some(events) = std::env::args_os().nth(1) else {
        eprintln!("usage: host_step <events-file> [arguments]");
        std::process::exit(2);
    };
    let transport = FileTransport::open(Path::new(&events), true).expect("open the events file");
    let recorder = Recorder::new("tests", Box::new(transport));
    let step = recorder.step("host").start().expect("start");
    step.complete(&[]).expect("complete");
}
