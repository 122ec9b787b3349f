//! Decodes the first N frames of a lab-codec bitstream and discards them: the program the
//! runner runs under callgrind to count the in-process codec's decoder instructions.
//!
//! ```text
//! codeclab-lab-decode BITSTREAM FRAMES
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, frames] = args.as_slice() else {
        eprintln!("usage: codeclab-lab-decode BITSTREAM FRAMES");
        return ExitCode::from(2);
    };
    let Ok(frames) = frames.parse::<u64>() else {
        eprintln!("FRAMES must be a whole number, not {frames}");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => std::io::BufReader::new(file),
        Err(err) => {
            eprintln!("{path}: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut decoder = match codeclab_codec::Decoder::new(file) {
        Ok(decoder) => decoder,
        Err(err) => {
            eprintln!("{path}: {err}");
            return ExitCode::FAILURE;
        }
    };
    for index in 0..frames {
        match decoder.next_frame() {
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(err) => {
                eprintln!("{path}: frame {index}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
