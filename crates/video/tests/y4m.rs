//! Y4M reader and writer: round trips, and every malformed input rejected with the file name and
//! the byte offset of the problem.

use codeclab_video::{
    AnyFrame, ChromaSampling, Frame, Plane, Rational, VideoError, VideoFormat, Y4mReader, Y4mWriter,
};
use proptest::prelude::*;

const NAME: &str = "clip.y4m";

fn read_all(bytes: &[u8]) -> Result<(VideoFormat, Vec<AnyFrame>), VideoError> {
    let mut reader = Y4mReader::new(bytes, NAME)?;
    let mut frames = Vec::new();
    while let Some(frame) = reader.read_frame()? {
        frames.push(frame);
    }
    Ok((*reader.format(), frames))
}

/// The error's (offset, message), after checking it names the file.
fn error_at(bytes: &[u8]) -> (u64, String) {
    let err = read_all(bytes).expect_err("input must be rejected");
    let message = err.to_string();
    assert!(message.starts_with(NAME), "no file name in `{message}`");
    let offset = match err {
        VideoError::Malformed { offset, .. }
        | VideoError::Unsupported { offset, .. }
        | VideoError::Truncated { offset, .. }
        | VideoError::Read { offset, .. } => offset,
        other => panic!("unexpected error kind: {other:?}"),
    };
    assert!(
        message.contains(&format!("at byte {offset}")),
        "offset missing from `{message}`"
    );
    (offset, message)
}

fn format(width: usize, height: usize, bit_depth: u8, chroma: ChromaSampling) -> VideoFormat {
    VideoFormat {
        width,
        height,
        bit_depth,
        chroma,
        fps: Rational::new(30000, 1001),
        aspect: Rational::new(1, 1),
    }
}

/// A frame whose samples follow a pattern seeded by `seed`, within the format's peak.
fn patterned_frame(format: &VideoFormat, seed: u32) -> AnyFrame {
    let peak = format.peak();
    let value = |plane: usize, i: usize| {
        (seed as usize)
            .wrapping_mul(31)
            .wrapping_add(plane * 7919 + i * 2654435761) as u32
            % (peak + 1)
    };
    let planes = |make: &dyn Fn(usize, usize, usize) -> Vec<u32>| {
        (0..format.chroma.plane_count())
            .map(|p| {
                let (w, h) = format.plane_size(p);
                (w, h, make(p, w, h))
            })
            .collect::<Vec<_>>()
    };
    let raw = planes(&|p, w, h| (0..w * h).map(|i| value(p, i)).collect());
    if format.bit_depth > 8 {
        AnyFrame::U16(Frame {
            planes: raw
                .into_iter()
                .map(|(w, h, v)| {
                    Plane::from_vec(w, h, v.into_iter().map(|s| s as u16).collect()).unwrap()
                })
                .collect(),
        })
    } else {
        AnyFrame::U8(Frame {
            planes: raw
                .into_iter()
                .map(|(w, h, v)| {
                    Plane::from_vec(w, h, v.into_iter().map(|s| s as u8).collect()).unwrap()
                })
                .collect(),
        })
    }
}

fn write_all(format: &VideoFormat, frames: &[AnyFrame]) -> Vec<u8> {
    let mut writer = Y4mWriter::new(Vec::new(), format).unwrap();
    for frame in frames {
        writer.write_frame(frame).unwrap();
    }
    writer.finish().unwrap()
}

#[test]
fn reads_a_minimal_stream_with_default_colour_space() {
    let mut bytes = b"YUV4MPEG2 W2 H2 F25:1\nFRAME\n".to_vec();
    bytes.extend([10, 20, 30, 40, 50, 60]);
    let (fmt, frames) = read_all(&bytes).unwrap();
    assert_eq!(fmt.chroma, ChromaSampling::Cs420);
    assert_eq!(fmt.bit_depth, 8);
    assert_eq!(fmt.fps, Rational::new(25, 1));
    assert_eq!(fmt.aspect, Rational::new(0, 0));
    let AnyFrame::U8(frame) = &frames[0] else {
        panic!("8-bit stream gave deep samples")
    };
    assert_eq!(frame.planes[0].data(), &[10, 20, 30, 40]);
    assert_eq!(frame.planes[1].data(), &[50]);
    assert_eq!(frame.planes[2].data(), &[60]);
}

#[test]
fn reads_deep_little_endian_samples_and_frame_parameters() {
    let mut bytes =
        b"YUV4MPEG2 W1 H1 F30:1 Ip A0:0 Cmono10 XCOLORRANGE=LIMITED\nFRAME Ixyz\n".to_vec();
    bytes.extend(1000u16.to_le_bytes());
    let (fmt, frames) = read_all(&bytes).unwrap();
    assert_eq!((fmt.chroma, fmt.bit_depth), (ChromaSampling::Mono, 10));
    assert_eq!(
        frames,
        vec![AnyFrame::U16(Frame {
            planes: vec![Plane::from_vec(1, 1, vec![1000]).unwrap()]
        })]
    );
}

#[test]
fn understands_every_colour_space_tag() {
    let cases: &[(&str, ChromaSampling, u8)] = &[
        ("420jpeg", ChromaSampling::Cs420, 8),
        ("420paldv", ChromaSampling::Cs420, 8),
        ("420mpeg2", ChromaSampling::Cs420, 8),
        ("420", ChromaSampling::Cs420, 8),
        ("422", ChromaSampling::Cs422, 8),
        ("444", ChromaSampling::Cs444, 8),
        ("mono", ChromaSampling::Mono, 8),
        ("420p10", ChromaSampling::Cs420, 10),
        ("422p12", ChromaSampling::Cs422, 12),
        ("444p16", ChromaSampling::Cs444, 16),
        ("420p9", ChromaSampling::Cs420, 9),
        ("mono16", ChromaSampling::Mono, 16),
    ];
    for &(tag, chroma, depth) in cases {
        let header = format!("YUV4MPEG2 W4 H2 F25:1 C{tag}\n");
        let reader = Y4mReader::new(header.as_bytes(), NAME).unwrap();
        assert_eq!(
            (reader.format().chroma, reader.format().bit_depth),
            (chroma, depth),
            "{tag}"
        );
    }
}

#[test]
fn writes_headers_ffmpeg_reads_back_the_same() {
    let fmt = format(6, 4, 10, ChromaSampling::Cs422);
    let bytes = write_all(&fmt, &[]);
    assert_eq!(
        bytes,
        b"YUV4MPEG2 W6 H4 F30000:1001 Ip A1:1 C422p10\n".to_vec()
    );
}

#[test]
fn malformed_headers_name_the_offset_of_the_bad_tag() {
    let cases: &[(&[u8], u64, &str)] = &[
        (b"", 0, "empty file"),
        (b"YUV4MPEG W2 H2 F25:1\n", 0, "not a Y4M stream"),
        (
            b"YUV4MPEG2 W2 H2 F25:1 Cweird\n",
            22,
            "unknown colour space",
        ),
        (
            b"YUV4MPEG2 W2 H2 F25:1 C420p17\n",
            22,
            "unknown colour space",
        ),
        (b"YUV4MPEG2 W2 H2 F25:1 C444alpha\n", 22, "unsupported"),
        (b"YUV4MPEG2 W0 H2 F25:1\n", 10, "width is zero"),
        (b"YUV4MPEG2 W2 H0 F25:1\n", 13, "height is zero"),
        (b"YUV4MPEG2 W-2 H2 F25:1\n", 10, "bad width"),
        (b"YUV4MPEG2 W99999999999 H2 F25:1\n", 10, "bad width"),
        (
            b"YUV4MPEG2 W16385 H2 F25:1\n",
            10,
            "exceeds the 16384 limit",
        ),
        (
            b"YUV4MPEG2 W2 H16385 F25:1\n",
            13,
            "exceeds the 16384 limit",
        ),
        (
            b"YUV4MPEG2 W16384 H16384 F25:1 C444p16\n",
            0,
            "bytes per frame exceeds",
        ),
        (b"YUV4MPEG2 W2 H2 F25:0\n", 16, "bad frame rate"),
        (b"YUV4MPEG2 W2 H2 F25\n", 16, "bad frame rate"),
        (b"YUV4MPEG2 W2 H2 F25:1 A1:0\n", 22, "bad pixel aspect"),
        (b"YUV4MPEG2 W2 H2 F25:1 It\n", 22, "interlaced"),
        (b"YUV4MPEG2 W2 H2 F25:1 I?\n", 22, "unknown interlacing"),
        (b"YUV4MPEG2 W2 H2 F25:1 Q7\n", 22, "unknown header tag"),
        (b"YUV4MPEG2 W2 W2 H2 F25:1\n", 13, "given twice"),
        (b"YUV4MPEG2 H2 F25:1\n", 0, "no W"),
        (b"YUV4MPEG2 W2 F25:1\n", 0, "no H"),
        (b"YUV4MPEG2 W2 H2\n", 0, "no F"),
        (b"YUV4MPEG2 W2 H2 F25:1", 21, "ends inside the header line"),
    ];
    for &(bytes, offset, what) in cases {
        let (got, message) = error_at(bytes);
        assert_eq!(got, offset, "{message}");
        assert!(message.contains(what), "`{message}` should say `{what}`");
    }
}

#[test]
fn a_header_that_never_ends_is_cut_off() {
    let mut bytes = b"YUV4MPEG2 W2 H2 F25:1 X".to_vec();
    bytes.resize(100_000, b'a');
    let (offset, message) = error_at(&bytes);
    assert_eq!(offset, 0);
    assert!(
        message.contains("header line longer than 4096 bytes"),
        "{message}"
    );
}

#[test]
fn bad_frame_markers_and_truncations_are_errors_not_ends() {
    let header = b"YUV4MPEG2 W2 H2 F25:1\n"; // 22 bytes, frames of 6 bytes
    let mut good = header.to_vec();
    good.extend(b"FRAME\n\x01\x02\x03\x04\x05\x06");
    let cases: Vec<(Vec<u8>, u64, &str)> = vec![
        (
            [&good[..], b"FRAMEX\n"].concat(),
            34,
            "expected a FRAME marker",
        ),
        (
            [&good[..], b"frame\n"].concat(),
            34,
            "expected a FRAME marker",
        ),
        (
            [&good[..], b"FRA"].concat(),
            37,
            "ends inside the header line",
        ),
        (
            [&good[..], b"FRAME\n\x01\x02"].concat(),
            42,
            "truncated frame 1: 2 of 6 bytes",
        ),
        (
            [&good[..], b"FRAME\n"].concat(),
            40,
            "truncated frame 1: 0 of 6 bytes",
        ),
    ];
    for (bytes, offset, what) in cases {
        let (got, message) = error_at(&bytes);
        assert_eq!(got, offset, "{message}");
        assert!(message.contains(what), "`{message}` should say `{what}`");
    }
    assert_eq!(read_all(&good).unwrap().1.len(), 1);
}

#[test]
fn deep_samples_above_the_peak_are_rejected_where_they_are() {
    let mut bytes = b"YUV4MPEG2 W2 H1 F25:1 C444p10\nFRAME\n".to_vec(); // 36 bytes
    for v in [1u16, 2, 3, 1024, 5, 6] {
        bytes.extend(v.to_le_bytes());
    }
    let (offset, message) = error_at(&bytes);
    assert_eq!(offset, 36 + 6);
    assert!(message.contains("sample 1 of plane 1 is 1024"), "{message}");
}

#[test]
fn open_names_the_path_and_hints_the_frame_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("three.y4m");
    let fmt = format(5, 3, 8, ChromaSampling::Cs420);
    let frames: Vec<AnyFrame> = (0..3).map(|i| patterned_frame(&fmt, i)).collect();
    std::fs::write(&path, write_all(&fmt, &frames)).unwrap();
    let mut reader = Y4mReader::open(&path).unwrap();
    assert_eq!(reader.frame_count_hint(), Some(3));
    let mut reused = AnyFrame::new_grey(&fmt);
    let mut read = Vec::new();
    while reader.read_frame_into(&mut reused).unwrap() {
        read.push(reused.clone());
    }
    assert_eq!(read, frames);

    let missing = dir.path().join("missing.y4m");
    let err = Y4mReader::open(&missing).err().expect("missing file");
    assert!(err.to_string().contains("missing.y4m"), "{err}");
}

#[test]
fn writer_rejects_frames_that_do_not_fit() {
    let fmt = format(4, 4, 10, ChromaSampling::Cs420);
    let writer = Y4mWriter::new(Vec::new(), &fmt).unwrap();
    let header_len = writer.finish().unwrap().len() as u64;
    let mut writer = Y4mWriter::new(Vec::new(), &fmt).unwrap();

    let eight_bit = patterned_frame(&format(4, 4, 8, ChromaSampling::Cs420), 1);
    let wrong_size = patterned_frame(&format(4, 2, 10, ChromaSampling::Cs420), 1);
    let wrong_sampling = patterned_frame(&format(4, 4, 10, ChromaSampling::Cs444), 1);
    let AnyFrame::U16(mut too_bright) = patterned_frame(&fmt, 1) else {
        unreachable!("10-bit format")
    };
    too_bright.planes[0].set(1, 1, 1024);
    for bad in [
        eight_bit,
        wrong_size,
        wrong_sampling,
        AnyFrame::U16(too_bright),
    ] {
        match writer.write_frame(&bad) {
            Err(VideoError::FrameMismatch { offset, frame, .. }) => {
                assert_eq!((offset, frame), (header_len, 0));
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }
    assert_eq!(writer.finish().unwrap().len() as u64, header_len);

    let bad_format = format(0, 4, 8, ChromaSampling::Cs420);
    assert!(matches!(
        Y4mWriter::new(Vec::new(), &bad_format),
        Err(VideoError::InvalidFormat { .. })
    ));
}

fn any_format() -> impl Strategy<Value = VideoFormat> {
    (
        1usize..=19,
        1usize..=17,
        prop_oneof![Just(8u8), Just(10), Just(12), Just(16), 9u8..=16],
        prop_oneof![
            Just(ChromaSampling::Cs420),
            Just(ChromaSampling::Cs422),
            Just(ChromaSampling::Cs444),
            Just(ChromaSampling::Mono)
        ],
        (1u32..=120_000, 1u32..=1001),
        prop_oneof![Just((0u32, 0u32)), (1u32..=100, 1u32..=100)],
    )
        .prop_map(
            |(width, height, bit_depth, chroma, fps, aspect)| VideoFormat {
                width,
                height,
                bit_depth,
                chroma,
                fps: Rational::new(fps.0, fps.1),
                aspect: Rational::new(aspect.0, aspect.1),
            },
        )
}

proptest! {
    #[test]
    fn writer_then_reader_is_identity(fmt in any_format(), seeds in prop::collection::vec(any::<u32>(), 0..4)) {
        let frames: Vec<AnyFrame> = seeds.iter().map(|&s| patterned_frame(&fmt, s)).collect();
        let bytes = write_all(&fmt, &frames);
        let (read_format, read_frames) = read_all(&bytes).unwrap();
        prop_assert_eq!(read_format, fmt);
        prop_assert_eq!(read_frames, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_all(&bytes);
    }

    #[test]
    fn corrupted_valid_streams_never_panic(
        fmt in any_format(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let frames = vec![patterned_frame(&fmt, 1), patterned_frame(&fmt, 2)];
        let mut bytes = write_all(&fmt, &frames);
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = read_all(&bytes);
    }
}
