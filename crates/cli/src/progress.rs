//! Progress bars on stderr, hidden when stderr is not a terminal so logs and pipes stay clean.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `total` items (frames, clips, runs); a spinner when the total is unknown.
pub fn bar(total: Option<u64>, what: &str) -> ProgressBar {
    let bar = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{msg:>12} {spinner} {pos} {per_sec}")
                .expect("static template"),
        ),
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.with_message(what.to_string())
}
