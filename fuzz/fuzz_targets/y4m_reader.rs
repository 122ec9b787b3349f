//! Any byte sequence given to the Y4M reader ends in frames or an error, never a panic, and the
//! frames it accepts survive a write and re-read unchanged.

#![no_main]

use codeclab_video::{AnyFrame, Y4mReader, Y4mWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = Y4mReader::new(data, "fuzz.y4m") else {
        return;
    };
    let format = *reader.format();
    let mut frames: Vec<AnyFrame> = Vec::new();
    while let Ok(Some(frame)) = reader.read_frame() {
        assert!(frame.matches(&format), "reader returned a frame unlike its format");
        frames.push(frame);
    }

    let mut writer = Y4mWriter::new(Vec::new(), &format).expect("a format the reader accepted");
    for frame in &frames {
        writer.write_frame(frame).expect("a frame the reader produced");
    }
    let bytes = writer.finish().expect("writing to memory");
    let mut again = Y4mReader::new(bytes.as_slice(), "rewritten.y4m").expect("our own header");
    assert_eq!(again.format(), &format);
    for frame in &frames {
        assert_eq!(again.read_frame().expect("our own frame").as_ref(), Some(frame));
    }
    assert!(again.read_frame().expect("a clean end").is_none());
});
