//! The Y4M reader and writer agree with ffmpeg: what ffmpeg writes reads back as the raw planes
//! ffmpeg produces for the same pictures, and what we write ffmpeg reads back byte for byte.
//! Skipped (with a note) only where ffmpeg is not installed.

use std::path::Path;
use std::process::Command;

use codeclab_video::{VideoFormat, Y4mReader, Y4mWriter, YuvReader, ffmpeg};

/// (ffmpeg pixel format, bit depth) pairs over every sampling and several depths.
const PIXEL_FORMATS: &[(&str, u8)] = &[
    ("yuv420p", 8),
    ("yuv422p", 8),
    ("yuv444p", 8),
    ("gray", 8),
    ("yuv420p10le", 10),
    ("yuv422p12le", 12),
    ("yuv444p16le", 16),
    ("gray10le", 10),
];

fn ffmpeg(args: &[&str], output: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(output)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args:?} failed");
}

#[test]
fn reads_what_ffmpeg_writes_and_ffmpeg_reads_what_we_write() {
    if !ffmpeg::available() {
        eprintln!("ffmpeg not installed: skipping the interop check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for &(pix_fmt, depth) in PIXEL_FORMATS {
        // Odd sizes exercise the rounding-up of chroma planes. ffmpeg 5.1 writes deep odd-width
        // Y4M frames with half-sample chroma rows (it rounds the row's byte count, not its
        // sample count), so deep formats get an even width.
        let width = if depth > 8 { 36 } else { 35 };
        let source = format!("testsrc=size={width}x17:rate=30000/1001:duration=0.1");
        let y4m = dir.path().join(format!("{pix_fmt}.y4m"));
        let raw = dir.path().join(format!("{pix_fmt}.yuv"));
        let common = [
            "-f", "lavfi", "-i", &source, "-pix_fmt", pix_fmt, "-strict", "-1",
        ];
        ffmpeg(&[&common[..], &["-f", "yuv4mpegpipe"]].concat(), &y4m);
        ffmpeg(&[&common[..], &["-f", "rawvideo"]].concat(), &raw);

        let mut reader = Y4mReader::open(&y4m).unwrap();
        let format: VideoFormat = *reader.format();
        assert_eq!(
            (format.width, format.height, format.bit_depth),
            (width, 17, depth)
        );
        assert_eq!(format.fps.num * 1001, format.fps.den * 30000, "{pix_fmt}");
        let mut raw_reader = YuvReader::open(&raw, &format).unwrap();
        let ours = dir.path().join(format!("{pix_fmt}.ours.y4m"));
        let mut writer = Y4mWriter::create(&ours, &format).unwrap();
        let mut frames = 0;
        while let Some(frame) = reader.read_frame().unwrap() {
            assert_eq!(
                Some(&frame),
                raw_reader.read_frame().unwrap().as_ref(),
                "{pix_fmt}"
            );
            writer.write_frame(&frame).unwrap();
            frames += 1;
        }
        assert_eq!(frames, 3, "{pix_fmt}");
        assert!(raw_reader.read_frame().unwrap().is_none());
        writer.finish().unwrap();

        let back = dir.path().join(format!("{pix_fmt}.back.yuv"));
        ffmpeg(
            &[
                "-i",
                ours.to_str().unwrap(),
                "-f",
                "rawvideo",
                "-pix_fmt",
                pix_fmt,
            ],
            &back,
        );
        assert!(
            std::fs::read(&back).unwrap() == std::fs::read(&raw).unwrap(),
            "{pix_fmt}: ffmpeg reads our Y4M differently"
        );
    }
}
